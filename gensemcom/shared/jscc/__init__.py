"""DeepJSCC: the trained analog codec for key regions (models, layers, zoo, training, evaluation).

Importing this package imports torch; ``gensemcom`` itself stays light.
"""

from gensemcom.shared.jscc.models import (
    STRIDE,
    DeepJSCC,
    JsccConfig,
    JsccSymbols,
    cbr,
    latent_positions,
    symbols_for_mask,
)
from gensemcom.shared.jscc.zoo import DEFAULT_MODEL, WeightsError, load_pretrained, load_weights, save_weights

__all__ = [
    "DEFAULT_MODEL",
    "STRIDE",
    "DeepJSCC",
    "JsccConfig",
    "JsccSymbols",
    "WeightsError",
    "cbr",
    "latent_positions",
    "load_pretrained",
    "load_weights",
    "save_weights",
    "symbols_for_mask",
]
