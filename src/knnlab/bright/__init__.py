"""knnlab.bright: BRIGHT/BRICS hash-table autoencoders (Yang et al. 2023). Not implemented yet.

The planned parts are: an encoder to bounded continuous key codes, groups of multi-resolution hash
tables (Instant-NGP style) looked up by those codes, a decoder, and latent diffusion over the key
codes. It will build on ``knnlab.train``, ``knnlab.metrics`` (FID, precision/recall, novelty) and
``knnlab.knn``.
"""
