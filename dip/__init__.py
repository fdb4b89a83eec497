"""Deep Image Prior: an untrained hourglass network as an image prior (Ulyanov et al., CVPR 2018)."""
