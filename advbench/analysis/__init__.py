"""The papers' diagnostics: layer-wise PSR and SNR, sparsity, invariance, noise and corruption
robustness, kernel views, the feature-size experiment, deceptive examples and model cost.

Each analysis is a function from (model, images, labels, options) to an `AnalysisResult`
(rows of numbers plus a summary) with a plot function beside it; `advbench.analysis.runner`
loads the model and the data, runs one, and writes CSV + PNG + JSON under
results/analysis/<name>/. This package imports nothing heavy on import.
"""
