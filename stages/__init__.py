"""The reference lab's stages, one module each, and the pipeline that orders them."""

from harness.stage import Pipeline
from stages import bootstrap

PIPELINE = Pipeline([bootstrap.STAGE], interfaces={})
