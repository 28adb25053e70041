"""scenetext: offline, CPU-first scene-text OCR (CTPN detector + CRNN/CTC recogniser).

Importing the package is cheap: models and heavy libraries load only when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
