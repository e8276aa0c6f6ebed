"""One home per medium: everything that differs between images, video and audio.

``get_medium("video")`` (or ``medium_of(tokenizer_or_pipeline)``, ``item_medium(batch)``,
``infer_medium(data_spec)``) returns a
:class:`~vqgen.media.base.Medium` that reads and writes its files, converts uint8 <-> float, loads and jitters
its data sets, builds its tokenizers' defaults, previews, evaluates and writes what ``generate``,
``reconstruct`` and ``decompress`` make. The file functions live in ``vqgen.media.image``, ``.video`` and
``.audio`` (``load_image``, ``save_video``, ``load_audio``, ...).

Adding a medium: a module with a ``Medium`` subclass that calls :func:`register_medium`, a tokenizer and a
pipeline class that name it in their ``medium`` class attribute, and the module's name in ``_BUILTIN`` (or an
import that registers it).
"""

from vqgen.media.base import (
    Flag,
    Medium,
    get_medium,
    infer_medium,
    item_medium,
    media,
    medium_names,
    medium_of,
    register_medium,
    to_uint8,
    to_unit_range,
)
from vqgen.media.settings import TokenizerSettings, build_tokenizer, start_tokenizer

__all__ = [
    "Flag",
    "Medium",
    "TokenizerSettings",
    "build_tokenizer",
    "get_medium",
    "infer_medium",
    "item_medium",
    "media",
    "medium_names",
    "medium_of",
    "register_medium",
    "start_tokenizer",
    "to_uint8",
    "to_unit_range",
]
