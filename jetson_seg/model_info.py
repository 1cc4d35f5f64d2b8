"""The model description: what a network expects and what its output means (model.json).

A model folder holds one model file and `model.json`; an optimizer output folder carries the same
description in its manifest's `model` section. Both are read and validated here, once, so every
mismatch is refused with the file and what to change. See README "Using your own model".
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from jetson_seg.errors import ModelError
from jetson_seg.model_formats import FORMATS, by_suffix, describe_files, model_format

MODEL_JSON = 'model.json'
KERAS_FILE = 'model.keras'
INPUT_DTYPES = ('uint8', 'float32')
CHANNEL_ORDERS = ('rgb', 'bgr')
RESIZE_MODES = ('letterbox', 'stretch')
#: Where the shape cannot tell (an ONNX input of 3x?x3): the network's memory layout.
LAYOUTS = ('nhwc', 'nchw')
OUTPUT_TYPES = ('softmax', 'logits', 'sigmoid', 'argmax')


#: Class masks are published as mono8 images: one byte per pixel holds the class id.
MAX_CLASSES = 256
#: Bounds of input.height/width in pixels. Below 8 a letterboxed 4:3 or 16:9 frame keeps too
#: few rows to place a mask; above 8192 (an 8K frame is 7680 wide) a float32 input alone takes
#: over 800 MB a frame, and runtimes fail deep inside (XNNPack "failed to reshape") instead of
#: naming the key.
MIN_INPUT_SIDE, MAX_INPUT_SIDE = 8, 8192


@dataclass(frozen=True)
class InputSpec:
    """How a camera frame becomes the network input.

    uint8: pixels fed as they are (normalisation inside the model). float32: fed as
    (pixel / 255 - mean) / std per channel, in `channel_order`. `layout` (nhwc|nchw) only where
    the model's input shape cannot tell (an ONNX input with 3 on both ends or dynamic).
    """

    height: int | None = None
    width: int | None = None
    dtype: str = 'uint8'
    channel_order: str = 'rgb'
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: str = 'letterbox'
    name: str | None = None
    layout: str | None = None


@dataclass(frozen=True)
class OutputSpec:
    """What the network's output holds: probabilities, logits, sigmoid scores or class ids."""

    type: str = 'softmax'
    threshold: float = 0.5
    name: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """A model's description plus the folder it came from."""

    path: Path
    class_names: tuple[str, ...]
    class_colors: tuple[tuple[int, int, int], ...]
    input: InputSpec = field(default_factory=InputSpec)
    output: OutputSpec = field(default_factory=OutputSpec)

    @property
    def input_hw(self) -> tuple[int, int]:
        if self.input.height is None or self.input.width is None:
            raise ModelError(f'{self.path / MODEL_JSON}: the model input size is dynamic; give '
                             f'input.height and input.width')
        return self.input.height, self.input.width

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def output_channels(self) -> int:
        """Channels the network's output must have for this description."""
        special = {'sigmoid': self.num_classes - 1, 'argmax': 1}
        return special.get(self.output.type, self.num_classes)

    def check_network(self, input_hw: tuple[int, int], output_channels: int,
                      input_dtype: str, where: str) -> 'ModelInfo':
        """The description completed by and checked against the network it describes.

        Returns a copy with a missing input size filled in; every mismatch says what to change.
        """
        info = self
        if self.input.height is None or self.input.width is None:
            if not all(MIN_INPUT_SIDE <= side <= MAX_INPUT_SIDE for side in input_hw):
                raise ModelError(f'{where} takes {input_hw[1]}x{input_hw[0]} (width x height), '
                                 f'outside {MIN_INPUT_SIDE}-{MAX_INPUT_SIDE} pixels a side')
            info = self.with_input_size(*input_hw)
        elif input_hw != self.input_hw:
            raise ModelError(f'{where} takes {input_hw[1]}x{input_hw[0]} (width x height) but '
                             f'{self.path / MODEL_JSON} says {self.input.width}x'
                             f'{self.input.height}; fix input.width/height')
        if output_channels != self.output_channels:
            raise ModelError(f'{where} outputs {output_channels} channel(s) but a '
                             f'{self.output.type} head with {self.num_classes} class_names '
                             f'needs {self.output_channels}; fix class_names or output.type in '
                             f'{self.path / MODEL_JSON}')
        if input_dtype != self.input.dtype:
            raise ModelError(f'{where} takes {input_dtype} input but {self.path / MODEL_JSON} '
                             f'says input.dtype {self.input.dtype!r}; set it to {input_dtype!r}')
        return info

    def with_input_size(self, height: int, width: int) -> 'ModelInfo':
        return replace(self, input=replace(self.input, height=height, width=width))

    def description(self) -> dict:
        """The model.json / manifest form (names and unset fields left out)."""
        described = {'input': {k: list(v) if isinstance(v, tuple) else v
                               for k, v in asdict(self.input).items() if v is not None},
                     'output': {k: v for k, v in asdict(self.output).items() if v is not None},
                     'class_names': list(self.class_names),
                     'class_colors': [list(c) for c in self.class_colors]}
        return described


def default_palette(count: int) -> tuple[tuple[int, int, int], ...]:
    """Black background, then evenly spread saturated hues: distinct for any class count."""
    colors = [(0, 0, 0)]
    for index in range(1, count):
        hue = (index - 1) * 0.618033988749895 % 1.0  # golden-ratio steps never repeat
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colors)


def _choice(section: dict, key: str, choices: tuple[str, ...], default: str, where: str) -> str:
    value = section.get(key, default)
    if value not in choices:
        raise ModelError(f'{where}: {key} {value!r} is not one of {", ".join(choices)}')
    return value


def _triple(section: dict, key: str, default: tuple[float, ...], where: str,
            positive: bool = False) -> tuple[float, float, float]:
    value = section.get(key, default)
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        triple = ()
    if len(triple) != 3 or (positive and min(triple) <= 0):
        need = 'three positive numbers' if positive else 'three numbers'
        raise ModelError(f'{where}: {key} must be {need} (one per channel), got {value!r}')
    return triple  # type: ignore[return-value]


def _size(section: dict, key: str, where: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelError(f'{where}: input.{key} must be a positive whole number of pixels, '
                         f'got {value!r}')
    if not MIN_INPUT_SIDE <= value <= MAX_INPUT_SIDE:
        raise ModelError(f'{where}: input.{key} {value} is outside {MIN_INPUT_SIDE}-'
                         f'{MAX_INPUT_SIDE} pixels; give the size the network was trained at')
    return value


def _known_keys(section: dict, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ModelError(f'{where}: unknown key(s) {unknown}; known: {", ".join(known)}')


def parse_description(data: object, where: str, path: Path) -> ModelInfo:
    """Validate a description (model.json content or a manifest's model section).

    `where` names the file in every message. Keys beside the description (training record,
    evaluation, checksums) are allowed at the top level; inside input/output they are refused,
    so a misspelt option does not silently fall back to its default.
    """
    if not isinstance(data, dict):
        raise ModelError(f'{where}: expected a JSON object, got {type(data).__name__}')
    names = data.get('class_names')
    if not isinstance(names, list) or not names or \
            not all(isinstance(n, str) and n for n in names):
        raise ModelError(f'{where}: class_names must be a non-empty list of names, one per '
                         f'output class (index 0 first)')
    if len(names) > MAX_CLASSES:
        raise ModelError(f'{where}: {len(names)} class_names, but masks are mono8 images '
                         f'(class ids 0-255): at most {MAX_CLASSES} classes')
    inp = data.get('input', {})
    out = data.get('output', {})
    if not isinstance(inp, dict) or not isinstance(out, dict):
        raise ModelError(f'{where}: input and output must be JSON objects (see the README, '
                         f'"Using your own model")')
    _known_keys(inp, tuple(InputSpec.__dataclass_fields__), f'{where} input')
    _known_keys(out, tuple(OutputSpec.__dataclass_fields__), f'{where} output')
    input_spec = InputSpec(
        height=_size(inp, 'height', where), width=_size(inp, 'width', where),
        dtype=_choice(inp, 'dtype', INPUT_DTYPES, 'uint8', f'{where} input'),
        channel_order=_choice(inp, 'channel_order', CHANNEL_ORDERS, 'rgb', f'{where} input'),
        mean=_triple(inp, 'mean', InputSpec.mean, f'{where} input'),
        std=_triple(inp, 'std', InputSpec.std, f'{where} input', positive=True),
        resize=_choice(inp, 'resize', RESIZE_MODES, 'letterbox', f'{where} input'),
        name=inp.get('name'),
        layout=None if inp.get('layout') is None else
        _choice(inp, 'layout', LAYOUTS, 'nhwc', f'{where} input'))
    threshold = out.get('threshold', 0.5)
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise ModelError(f'{where}: output.threshold must be between 0 and 1, got {threshold!r}')
    output_spec = OutputSpec(
        type=_choice(out, 'type', OUTPUT_TYPES, 'softmax', f'{where} output'),
        threshold=float(threshold), name=out.get('name'))
    if output_spec.type == 'sigmoid' and len(names) < 2:
        raise ModelError(f'{where}: a sigmoid head needs class_names with background first, '
                         f'e.g. ["background", "person"]')
    colors = data.get('class_colors')
    if colors is None:
        palette = default_palette(len(names))
    else:
        try:
            palette = tuple(tuple(int(c) for c in rgb) for rgb in colors)
        except (TypeError, ValueError):
            palette = ()
        if len(palette) != len(names) or any(len(c) != 3 or not all(0 <= v <= 255 for v in c)
                                             for c in palette):
            raise ModelError(f'{where}: class_colors must give one [r, g, b] (0-255) per class '
                             f'({len(names)} classes), or be left out for a default palette')
    return ModelInfo(path, tuple(names), palette, input_spec, output_spec)  # type: ignore


def read_model_info(model_dir: Path) -> ModelInfo:
    """Parse and validate `model_dir`/model.json."""
    meta_path = model_dir / MODEL_JSON
    try:
        data = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f'model description missing: {meta_path} (see the README, "Using '
                         f'your own model")') from exc
    except ValueError as exc:
        raise ModelError(f'{meta_path} is not valid JSON: {exc}') from exc
    return parse_description(data, str(meta_path), model_dir)


def write_model_json(model_dir: Path, info: ModelInfo, extra: dict | None = None) -> Path:
    """Write the description (plus `extra` top-level records, e.g. training) as model.json."""
    path = model_dir / MODEL_JSON
    path.write_text(json.dumps({**info.description(), **(extra or {})}, indent=2) + '\n')
    return path


def locate_model(path: Path) -> tuple[Path, Path, str]:
    """(model folder, model file or SavedModel folder, format) for a folder or a file in it."""
    if path.is_file():
        folder_format = next((f for f in FORMATS if f.is_folder and f.file_name == path.name),
                             None)
        if folder_format is not None:
            return path.parent, path.parent, folder_format.name
        fmt = by_suffix(path.suffix)
        if fmt is None:
            raise ModelError(f'{path}: not a model file this package serves ({describe_files()})')
        return path.parent, path, fmt.name
    found = [fmt for fmt in FORMATS if (path / fmt.file_name).is_file()]
    if len(found) != 1:
        have = ', '.join(fmt.file_name for fmt in found) or 'none of them'
        raise ModelError(f'{path} must hold exactly one of '
                         f'{", ".join(fmt.file_name for fmt in FORMATS)} (has {have}); or set '
                         f'model_path to the model file itself')
    fmt = found[0]
    return path, (path if fmt.is_folder else path / fmt.file_name), fmt.name


def source_files(path: Path) -> list[Path]:
    """The files that make a model what it is: the model (all of a SavedModel) and model.json.

    Anything else in the folder (an optimizer output kept beside it, notes) is not the model.
    """
    model_dir, model_file, fmt = locate_model(path)
    files = [model_dir / MODEL_JSON]
    if not model_format(fmt).is_folder:
        return [model_file, *files]
    parts = [model_file / 'saved_model.pb']
    for sub in ('variables', 'assets'):
        parts.extend((model_file / sub).rglob('*'))
    return sorted(p for p in parts if p.is_file()) + files


#: The models shipped in models/, each with its optimizer output beside it (`optimized/`):
#: the default, and one at a finer input for small fast objects (README "The default model").
PACKAGED_MODELS = ('default', 'small_objects')


def packaged_model_dir(name: str = 'default') -> Path:
    """A packaged model (PACKAGED_MODELS): the ROS share directory, else the source tree."""
    try:
        from ament_index_python.packages import (PackageNotFoundError,
                                                 get_package_share_directory)
        try:
            shared = Path(get_package_share_directory('jetson_seg')) / 'models' / name
            if (shared / KERAS_FILE).is_file():
                return shared
        except (PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parent.parent / 'models' / name


def default_model_dir() -> Path:
    """The packaged default model: the ROS share directory, else the source tree."""
    return packaged_model_dir('default')


def load_keras(path: str | Path, trust: bool = False):
    """Load a .keras or legacy .h5 model after model_trust checked its config (unless `trust`).

    Keras's safe_mode guards .keras files only and has had bypasses; the allow-list check runs
    first on the raw config, and safe_mode stays on as a second guard.
    """
    import keras

    from jetson_seg.model_trust import check_keras

    path = Path(path)
    check_keras(path, trust)
    return keras.models.load_model(str(path), compile=False, safe_mode=not trust)
