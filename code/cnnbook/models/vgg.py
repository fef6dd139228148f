"""(to be written: the vgg family of the zoo)."""
