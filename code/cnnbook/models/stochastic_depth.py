"""(to be written: the stochastic_depth family of the zoo)."""
