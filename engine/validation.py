# temporary: replaced by the engine-layering branch
from engine.spec import errors, validate  # noqa: F401
