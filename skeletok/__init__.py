"""skeletok: PyTorch building blocks for skeletal pose tokenizers and autoregressive priors."""

__version__ = "0.1.0"
