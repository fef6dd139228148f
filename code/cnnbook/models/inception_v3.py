"""(to be written: the inception_v3 family of the zoo)."""
