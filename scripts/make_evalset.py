#!/usr/bin/env python3
"""Build the evaluation set from the shared test data (see mattectl.evaluation.dataset).

    PYTHONPATH=daemon python scripts/make_evalset.py --data ../shared/data --out /tmp/evalset

Subjects: the 19 people of U-2-Net's human test set, cut out by the published outputs of the real
u2net_human_seg model (--cut-with MODEL uses a model installed here instead). Each subject goes
over --per-subject real backgrounds of different kinds, at every --scales value (1 = as in the
photo; 0.4 = small in the frame). Then: mattectl eval --images OUT/images --alphas OUT/alphas.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mattectl import config
from mattectl.backends.cache import ModelCache
from mattectl.evaluation import dataset
from mattectl.evaluation.runner import find_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-subject", type=int, default=2,
                        help="backgrounds per subject, taken in turn (default 2)")
    parser.add_argument("--scales", default="1,0.4", help="subject scales (default 1,0.4)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N subjects")
    parser.add_argument("--cut-with", default=None, metavar="MODEL",
                        help="cut subjects out with this installed model instead")
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    photos = args.data / dataset.STANDARD_PHOTOS
    if args.cut_with:
        settings = config.parse({"models": {"dir": str(args.models_dir)}} if args.models_dir
                                else {})
        backend = ModelCache(settings.models, settings.models_dir).get(args.cut_with)
        subjects = list(dataset.subjects_from_model(find_photos(photos)[:args.limit],
                                                    backend.predict))
    else:
        subjects = list(dataset.subjects_from_mattes(photos, args.data / dataset.STANDARD_MATTES))
        subjects = subjects[:args.limit]
    backgrounds = dataset.standard_backgrounds(args.data)
    scales = [float(s) for s in args.scales.split(",")]
    entries = dataset.write_set(args.out, dataset.plan(subjects, backgrounds, scales,
                                                       args.per_subject))
    print(f"{len(entries)} images in {args.out}/images, truths in {args.out}/alphas")


if __name__ == "__main__":
    main()
