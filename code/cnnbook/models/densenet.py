"""(to be written: the densenet family of the zoo)."""
