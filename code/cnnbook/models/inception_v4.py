"""(to be written: the inception_v4 family of the zoo)."""
