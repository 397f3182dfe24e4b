"""The names and severity tables of the synthetic corruptions (`ftbench.corruptions`
applies them), in a module without torch so that suite validation can check names.
"""

from __future__ import annotations

import difflib

from ftbench.errors import UserInputError

# Per corruption, the parameter at severities 1..5 (damage grows left to right).
SEVERITY_TABLE: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # noise std, image in [0, 1]
    "shot_noise": (500, 250, 100, 75, 50),  # photons at full intensity (fewer = noisier)
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # fraction of salt-and-pepper pixels
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # sigma in pixels of a 32 px image
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor towards the image's mean
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to every channel
    "rotate": (6, 12, 18, 24, 30),  # degrees, sign drawn per image
    "pixelate": (2, 3, 4, 5, 6),  # block side in pixels of a 32 px image
    "jpeg": (80, 65, 58, 50, 40),  # JPEG quality
}
CORRUPTIONS: tuple[str, ...] = tuple(SEVERITY_TABLE)


def check_corruption(name: str, severity: int) -> None:
    """Raise UserInputError unless `name` is a known corruption and 1 <= severity <= 5."""
    if name not in SEVERITY_TABLE:
        close = difflib.get_close_matches(name, CORRUPTIONS, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserInputError(f"unknown corruption '{name}'{hint} (known: {', '.join(CORRUPTIONS)})")
    if not (isinstance(severity, int) and 1 <= severity <= 5):
        raise UserInputError(f"corruption '{name}': severity must be an integer 1..5, got {severity!r}")
