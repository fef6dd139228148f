"""(to be written: the zfnet family of the zoo)."""
