"""The paper's experiments, run through the library and the sweep service (above both; nothing imports this):

- `reproduce` (with `protocols`, `report`): Table 1 and Figures 2 and 4 — `rfsweep reproduce`;
- `pinv_demo`: Figure 2, pairs of matrices learning each other's pseudoinverse — `rfsweep pinv-demo`;
- `recipe_comparison`: rf_core's bp against the standard PyTorch recipe, epoch for epoch — part of `rfsweep bench`;
- `rf_screen`: Fashion-MNIST screens of training configurations, selected on validation (docs/RF_CORE.md);
- `ablations`: what does the work in Reciprocal Feedback, one change per row, with each row's ledger (docs/RESULTS.md);
- `newton_fidelity`: how far one layer's step alone moves the output, per RF update form (docs/RF_CORE.md).
"""
