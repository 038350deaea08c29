"""Segmentation without a trained model: K-means and Otsu (:mod:`.unsupervised`)."""
