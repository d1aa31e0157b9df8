"""unmask: tell real face photos from GAN-generated and edited ones.

Nothing heavy is imported here: `import unmask` and `unmask --help` stay instant.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
