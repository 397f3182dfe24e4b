"""ftbench: which way of fine-tuning a pretrained model works best here, and at what cost."""

__version__ = "0.1.0"

import pluggy as _pluggy

#: Decorate a plugin's hook implementations with this: `@ftbench.hookimpl`.
hookimpl = _pluggy.HookimplMarker("ftbench")
