"""``nanocrystal weak-labels``: weak labels (0 background / 1 particle / 255 uncertain) for unlabelled images.

For every input image, writes ``<name>_weak.png`` into ``--out`` (``<name>`` is the image's
stem without a trailing ``_image``): the flat naming convention that
:func:`napari_nanocrystal.segmentation.data.find_weak_pairs` pairs with ``<name>_image.png``.
Files are written atomically; existing outputs make the command refuse to start unless
``--overwrite``.  Exit status: 0 all images done, 1 some failed (each reported), 2 nothing
done (bad options, no images, outputs exist, detector cannot be loaded).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ._args import PLANE_HELP, diameter_or_auto, fraction, non_negative_float, plane_index

logger = logging.getLogger(__name__)

HELP = "weak labels (0 background, 1 particle, 255 uncertain) from detector boxes, Otsu and an erosion/dilation band"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "weak-labels",
        help=HELP,
        description=HELP + ". Detectors: 'self' (the segmentation model's confident instances), 'mmdet' (the paper's "
        "Cascade R-CNN + HRNet + NWD, trained with napari_nanocrystal.detection.train_detector), 'otsu' (Otsu + watershed, no model).",
        epilog="Writes <name>_weak.png per image. Exit status: 0 all done, 1 some images failed, 2 nothing done.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="IMAGE", help="image files (.tif .tiff .png .jpg .jpeg .bmp .dm3 .dm4) or folders of them"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument(
        "--detector", choices=("self", "mmdet", "otsu"), default="self", help="where the boxes come from (default: %(default)s)"
    )
    parser.add_argument(
        "--model",
        default="default",
        metavar="default|FILE",
        help="'self': segmentation model, 'default' or a weight file (default: %(default)s)",
    )
    parser.add_argument("--checkpoint", default=None, metavar="FILE", help="'mmdet': detector.pth written by train_detector")
    parser.add_argument("--config", default=None, metavar="FILE", help="'mmdet': its config (default: config.py beside the checkpoint)")
    parser.add_argument(
        "--score-threshold", type=fraction, default=0.5, metavar="S", help="keep detections scoring at least S (default: %(default)g)"
    )
    parser.add_argument(
        "--erode-px",
        type=non_negative_float,
        default=1.5,
        metavar="R",
        help="uncertain band inside each particle edge, px (default: %(default)g)",
    )
    parser.add_argument(
        "--dilate-px",
        type=non_negative_float,
        default=1.5,
        metavar="R",
        help="uncertain band outside each particle edge, px (default: %(default)g)",
    )
    parser.add_argument(
        "--erode-frac",
        type=non_negative_float,
        default=0.0,
        metavar="F",
        help="add F × the box's shorter side to the inner band (default: %(default)g)",
    )
    parser.add_argument(
        "--dilate-frac",
        type=non_negative_float,
        default=0.0,
        metavar="F",
        help="add F × the box's shorter side to the outer band (default: %(default)g)",
    )
    parser.add_argument(
        "--polarity",
        choices=("auto", "dark", "bright"),
        default="auto",
        help="particles darker or brighter than the background; auto: per box (default: %(default)s)",
    )
    parser.add_argument(
        "--diameter-px",
        type=diameter_or_auto,
        default=None,
        metavar="D|auto",
        help="typical particle diameter in px ('self': rescaling, 'auto' = estimated per image by the model; 'otsu': marker spacing)",
    )
    parser.add_argument(
        "--confident-background",
        type=fraction,
        default=None,
        metavar="P",
        help="'self': only pixels with seed probability below P are background, the rest outside the detections "
        "uncertain (default: everything outside the detections is background, as in the paper)",
    )
    parser.add_argument(
        "--otsu-background",
        type=fraction,
        default=None,
        metavar="F",
        help="background only in the background phase of the image's Otsu threshold, and none in an image whose "
        "detections cover less than F of the particle phase (default: no check, as in the paper)",
    )
    parser.add_argument("--plane", type=plane_index, default=None, metavar="K", help=PLANE_HELP)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from nc_synthmodel.files import atomic_write_bytes, check_output, check_writable_dir

    from napari_nanocrystal.analysis import collect_images
    from napari_nanocrystal.images import read_image
    from napari_nanocrystal.label_files import png_bytes, weak_label_name
    from napari_nanocrystal.validation import check_model_file
    from napari_nanocrystal.weak_labels import detections, load_box_detector, weak_label_from_boxes

    out = Path(args.out)
    images, problems = collect_images(args.paths, skip_dir=out)
    for record in problems:
        print(f"nanocrystal weak-labels: error: {record.error}", file=sys.stderr)
    if not images:
        print("nanocrystal weak-labels: error: no images to process", file=sys.stderr)
        return 2
    targets: dict[str, Path] = {}
    for image in images:
        name = weak_label_name(image)
        if name in targets:
            print(
                f"nanocrystal weak-labels: error: {targets[name]} and {image} would both write {name}; process them separately",
                file=sys.stderr,
            )
            return 2
        targets[name] = image
    existing = [out / name for name in targets if (out / name).exists()]
    if existing and not args.overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (" …" if len(existing) > 3 else "")
        print(f"nanocrystal weak-labels: error: output exists: {shown} (use --overwrite)", file=sys.stderr)
        return 2
    try:
        for name in targets:
            check_output(out / name, overwrite=True, inputs=images)
        check_writable_dir(out)
    except ValueError as error:
        print(f"nanocrystal weak-labels: error: {error}", file=sys.stderr)
        return 2
    try:
        if args.detector == "self":
            check_model_file(args.model)
        detect = load_box_detector(
            args.detector,
            model=args.model,
            checkpoint=args.checkpoint,
            config=args.config,
            score_threshold=args.score_threshold,
            diameter_px=args.diameter_px,
            confident_background=args.confident_background,
        )
    except (FileNotFoundError, ValueError, ImportError, TypeError) as error:
        print(f"nanocrystal weak-labels: error: cannot load the {args.detector!r} detector: {error}", file=sys.stderr)
        return 2

    from tqdm import tqdm

    failed = len(problems)
    done = 0
    # drawn on a terminal only (disable=None): logs and pipes get the final report alone
    bar = tqdm(targets.items(), total=len(targets), file=sys.stderr, dynamic_ncols=True, disable=None, unit="image")
    for i, (name, image_path) in enumerate(bar):
        try:
            image, _, _ = read_image(image_path, plane=args.plane)
            boxes, background = detections(detect(image))
            weak = weak_label_from_boxes(
                image,
                boxes,
                background=background,
                erode_px=args.erode_px,
                dilate_px=args.dilate_px,
                erode_frac=args.erode_frac,
                dilate_frac=args.dilate_frac,
                polarity=args.polarity,
                otsu_background=args.otsu_background,
            )
            atomic_write_bytes(out / name, png_bytes(weak))
        except (OSError, ValueError, RuntimeError, ImportError, MemoryError) as error:
            failed += 1
            message = str(error)
            print(f"FAILED {message if str(image_path) in message else f'{image_path}: {message}'}", file=sys.stderr)
            continue
        done += 1
        logger.info("[%d/%d] %s: %d boxes → %s", i + 1, len(targets), image_path, len(boxes), out / name)
    bar.close()
    print(f"wrote {done} weak label(s) of {len(targets)} image(s) to {out}")
    if done == 0:
        return 1 if failed else 2
    return 1 if failed else 0
