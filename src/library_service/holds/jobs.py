"""Names of the holds jobs, as the worker registers them."""

EXPIRE_UNCOLLECTED = "holds.expire_uncollected"
