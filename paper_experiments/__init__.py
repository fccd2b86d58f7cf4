"""The paper's experiments, run through the library and the sweep service (above both; nothing imports this):

- `reproduce` (with `protocols`, `report`): Table 1 and Figures 2 and 4 — `rfsweep reproduce`;
- `pinv_demo`: Figure 2, pairs of matrices learning each other's pseudoinverse — `rfsweep pinv-demo`;
- `recipe_comparison`: rf_core's bp against the standard PyTorch recipe, epoch for epoch — part of `rfsweep bench`;
- `rf_screen`: the Fashion-MNIST screens of RF's stability knobs behind docs/RF_STABILITY.md.
"""
