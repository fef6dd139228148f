"""(to be written: the nin family of the zoo)."""
