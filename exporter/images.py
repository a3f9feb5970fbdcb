"""Image preprocessing: the manifest's ``image`` section, derived from a Hugging Face image processor,
and a small reference implementation of that section (PIL + numpy) used to prove the derivation
reproduces the processor's own ``pixel_values``. The server implements the same steps.
"""

from __future__ import annotations

import numpy as np

from .errors import ExportError

RESAMPLE_NAMES = {0: "nearest", 2: "bilinear", 3: "bicubic"}
#: YOLOS rounds both output edges down to a multiple of 16 (transformers' get_size_with_aspect_ratio_yolos).
YOLOS_MULTIPLE_OF = 16


def load_processor(model_type: str, model_dir):
    """The PIL image processor for a model folder (never the torchvision-backed "fast" one)."""
    import transformers

    if model_type == "yolos":
        cls = getattr(transformers, "YolosImageProcessorPil", None) or transformers.YolosImageProcessor
    else:
        cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    try:
        return cls.from_pretrained(str(model_dir))
    except Exception as e:  # malformed preprocessor_config.json
        raise ExportError(f"cannot load the image processor from {model_dir}: {e}") from None


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def image_spec(processor, model_type: str, config) -> dict:
    """The manifest ``image`` section for a processor (raises ExportError for unsupported settings)."""
    d = processor.to_dict()
    if d.get("do_center_crop"):
        raise ExportError("the image processor center-crops (do_center_crop); the server does not support that")
    resample = int(d.get("resample") if d.get("resample") is not None else 2)
    if resample not in RESAMPLE_NAMES:
        raise ExportError(f"image processor resample={resample} is not supported (nearest, bilinear, bicubic only)")
    size = dict(d.get("size") or {})
    model_h, model_w = _pair(config.image_size)
    spec: dict = {}
    if "height" in size and "width" in size:
        spec.update(height=int(size["height"]), width=int(size["width"]), resize="fixed")
    elif "shortest_edge" in size:
        spec.update(height=model_h, width=model_w, resize="shortest_edge", shortest_edge=int(size["shortest_edge"]))
        if size.get("longest_edge"):
            spec["longest_edge"] = int(size["longest_edge"])
        if model_type == "yolos":
            spec["multiple_of"] = YOLOS_MULTIPLE_OF
        else:
            raise ExportError("shortest_edge resizing is only supported for YOLOS")
    else:
        raise ExportError(f"image processor size {size} is not supported (height/width or shortest_edge)")
    mean = d.get("image_mean")
    std = d.get("image_std")
    mean = [float(mean)] * 3 if isinstance(mean, (int, float)) else [float(v) for v in (mean or [0, 0, 0])]
    std = [float(std)] * 3 if isinstance(std, (int, float)) else [float(v) for v in (std or [1, 1, 1])]
    spec.update(
        resample=RESAMPLE_NAMES[resample],
        do_resize=bool(d.get("do_resize", True)),
        do_rescale=bool(d.get("do_rescale", True)),
        rescale_factor=float(d.get("rescale_factor", 1 / 255)),
        do_normalize=bool(d.get("do_normalize", True)),
        image_mean=mean,
        image_std=std,
        channel_order="RGB",
        layout="NCHW",
    )
    if model_type == "yolos":
        spec["do_pad"] = bool(d.get("do_pad", False))
    return spec


def output_size(height: int, width: int, spec: dict) -> tuple[int, int]:
    """(height, width) an image of the given size is resized to, following ``spec``."""
    if not spec["do_resize"]:
        return height, width
    if spec["resize"] == "fixed":
        return spec["height"], spec["width"]
    # shortest_edge (+ longest_edge), as transformers' get_size_with_aspect_ratio_yolos
    size = spec["shortest_edge"]
    max_size = spec.get("longest_edge")
    raw_size = None
    if max_size is not None:
        short, long_ = float(min(height, width)), float(max(height, width))
        if long_ / short * size > max_size:
            raw_size = max_size * short / long_
            size = int(round(raw_size))
    if width < height:
        ow = size
        oh = int((raw_size if raw_size is not None else size) * height / width)
    elif (height <= width and height == size) or (width <= height and width == size):
        oh, ow = height, width
    else:
        oh = size
        ow = int((raw_size if raw_size is not None else size) * width / height)
    multiple = spec.get("multiple_of")
    if multiple:
        oh, ow = oh - oh % multiple, ow - ow % multiple
    return oh, ow


def reference_preprocess(image, spec: dict) -> np.ndarray:
    """PIL image -> float32 [3, H, W] exactly as the manifest describes (the server does the same)."""
    from PIL import Image

    resample = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC}[spec["resample"]]
    image = image.convert("RGB")
    h, w = output_size(image.height, image.width, spec)
    if (h, w) != (image.height, image.width):
        image = image.resize((w, h), resample=resample)
    x = np.asarray(image).astype(np.float32)  # H, W, C in RGB order, 0..255
    if spec["do_rescale"]:
        x = x * np.float32(spec["rescale_factor"])
    if spec["do_normalize"]:
        x = (x - np.asarray(spec["image_mean"], np.float32)) / np.asarray(spec["image_std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def sample_images(seed: int = 0):
    """Two synthetic RGB images (different sizes and aspect ratios) for preprocessing checks."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for h, w in ((37, 53), (90, 61)):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], axis=-1)
        noise = rng.integers(0, 40, size=(h, w, 3))
        images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB"))
    return images


def preprocessing_parity(processor, spec: dict) -> float:
    """Max |processor(pixel_values) - reference_preprocess| over the sample images."""
    worst = 0.0
    for image in sample_images():
        expected = np.asarray(processor(images=[image], return_tensors="np")["pixel_values"][0], np.float32)
        got = reference_preprocess(image, spec)
        if expected.shape != got.shape:
            raise ExportError(
                f"the manifest's image section does not reproduce the image processor: shape {list(got.shape)} "
                f"vs {list(expected.shape)} for a {image.width}x{image.height} image"
            )
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst
