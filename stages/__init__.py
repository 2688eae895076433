"""The reference lab's stages, one module each, in the order of `harness.stage.ORDER`."""
