"""Predicting the accuracy drop from topology (see docs/predict.md)."""

#: The study's predictor: mask-only MGE topometrics, the setting (sparsity, dataset, MGE size), the
#: layer densities and their within-setting centred versions; chosen by grouped CV among
#: pre-training feature sets (``bench/predictor_cv.py``; docs/predict.md has the table).
STUDY_FEATURES = "mge-structural+setting+density+mge-structural-centred+density-centred"
#: The study predictor's regressor, chosen with the features (``bench/predictor_cv.py``).
STUDY_REGRESSOR = "et"
