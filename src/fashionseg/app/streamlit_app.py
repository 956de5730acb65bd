"""The fashionseg page: photos in; garments, masks and attributes out. Served by ``fashionseg app``.

Start-up options arrive after ``--`` (see :func:`fashionseg.app.logic.parse_app_args`). The model loads once
per checkpoint for every session, and each image runs through it once per detection floor
(:func:`fashionseg.app.logic.detection_floor`): the sliders above the default score threshold and the category
filter only re-select, re-draw and re-tabulate the cached detections.
"""

from __future__ import annotations

import hashlib
import sys

import streamlit as st
from PIL import Image

from fashionseg.app import logic
from fashionseg.errors import FashionsegError
from fashionseg.predict import Predictor
from fashionseg.structures import Prediction


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def load_predictor(checkpoint: str, modified_ns: int) -> Predictor:
    """The model of a checkpoint (read with ``weights_only=True``), on the GPU when there is one.

    ``modified_ns`` is part of the cache key, so a checkpoint rewritten by a new training run is reloaded.
    """
    return Predictor.from_checkpoint(checkpoint, device="auto")


@st.cache_resource(show_spinner="Finding garments…", max_entries=16)
def detect(checkpoint: str, modified_ns: int, digest: str, floor: float, _image: Image.Image) -> Prediction:
    """The detections scoring at least ``floor`` in one image (``digest`` names it)."""
    return load_predictor(checkpoint, modified_ns).predict([_image], score_threshold=floor)[0]


@st.cache_resource(show_spinner=False)
def example_image(name: str) -> Image.Image:
    """An example image, rendered or read once."""
    return logic.EXAMPLES[name]()


def card_markdown(rows: list[tuple[str, str]]) -> str:
    """The model card as one "**field**: value" line per row (narrow enough for the sidebar)."""
    return "  \n".join(f"**{field}**: {value}" for field, value in rows)


def sidebar(runs: list[logic.RunInfo]) -> tuple[logic.RunInfo, Predictor, logic.Controls]:
    """The run picker, its model card and the display controls."""
    with st.sidebar:
        st.header("Model")
        name = st.selectbox("Trained run", [r.name for r in runs], key="run", help="runs found at start-up")
        run = next(r for r in runs if r.name == name)
        st.markdown(card_markdown(logic.model_card(run)))
        try:
            predictor = load_predictor(str(run.checkpoint), run.checkpoint.stat().st_mtime_ns)
        except FashionsegError as exc:
            st.error(f"Cannot load this run: {exc}")
            st.stop()
        st.caption(f"Inference on {predictor.device.type.upper()}.")
        st.header("Display")
        score = st.slider(
            "Score threshold",
            0.0,
            1.0,
            logic.DEFAULT_SCORE_THRESHOLD,
            0.05,
            key="score",
            help="show detections at least this confident",
        )
        model_config = predictor.config["model"]
        default_attribute = float(model_config.get("attribute_threshold", logic.Controls.attribute_threshold))
        attribute = st.slider(
            "Attribute threshold",
            0.0,
            1.0,
            default_attribute,
            0.05,
            key="attribute",
            help="list attributes this probable",
        )
        labels = predictor.labels
        chosen = st.multiselect(
            "Categories", labels.category_names, key="categories", placeholder="all categories"
        )
    ids = tuple(labels.category_ids[labels.category_names.index(n)] for n in chosen) or None
    return run, predictor, logic.Controls(score, attribute, ids)


def gather_images(max_upload_mb: int) -> list[tuple[str, Image.Image, str]]:
    """(name, image, digest) of each usable upload and the chosen example; an error line per bad file."""
    uploads = st.file_uploader(
        f"Upload photos ({', '.join(logic.UPLOAD_TYPES)}; up to {max_upload_mb} MB each)",
        type=list(logic.UPLOAD_TYPES),
        accept_multiple_files=True,
        max_upload_size=max_upload_mb,
        key="uploads",
    )
    example = st.selectbox(
        "…or try an example",
        list(logic.EXAMPLES),
        index=None,
        key="example",
        placeholder="choose an example image",
    )
    images = []
    for upload in uploads or []:
        data = upload.getvalue()
        try:
            image = logic.read_upload(upload.name, data, max_upload_mb)
        except logic.UploadError as exc:
            st.error(str(exc))
            continue
        images.append((upload.name, image, hashlib.sha256(data).hexdigest()))
    if example is not None:
        images.append((example, example_image(example), f"example:{example}"))
    return images


def show_result(
    index: int,
    name: str,
    image: Image.Image,
    pred: Prediction,
    predictor: Predictor,
    controls: logic.Controls,
) -> None:
    """Overlay, detection table and downloads of one image."""
    shown = logic.select(pred, predictor.labels, controls)
    st.subheader(name)
    left, right = st.columns([3, 4])
    drawn = logic.overlay(image, shown, predictor.labels)
    left.image(drawn, caption=f"{len(shown)} of {len(pred)} detections shown", width="stretch")
    with right:
        st.dataframe(logic.detections_table(shown, predictor.labels), hide_index=True)
        stem = logic.file_stem(name)
        st.download_button(
            "Detections (COCO-results JSON)",
            logic.detections_json(shown, predictor.labels, image_id=index + 1),
            file_name=f"{stem}_detections.json",
            mime="application/json",
            on_click="ignore",
            key=f"json-{index}",
        )
        st.download_button(
            "Overlay (PNG)",
            logic.png_bytes(drawn),
            file_name=f"{stem}_overlay.png",
            mime="image/png",
            on_click="ignore",
            key=f"png-{index}",
        )


def main() -> None:
    st.set_page_config(page_title="fashionseg", layout="wide")
    options = logic.parse_app_args(sys.argv[1:])
    st.title("fashionseg: garments, masks and attributes")
    st.caption(
        "Attribute-Mask R-CNN on the Fashionpedia ontology: each garment and garment part is outlined, named "
        "and described by its attributes. Images stay in memory and are never stored."
    )
    try:
        runs = logic.discover_runs(options.results, options.weights)
    except FashionsegError as exc:
        st.error(str(exc))
        st.stop()
    if not runs:
        searched = ", ".join(f"{p}/" for p in options.results)
        st.warning(
            f"No trained model found (searched {searched} for {logic.CHECKPOINT_NAME}). Train one with "
            "`fashionseg train --preset demo`, or start the app with `fashionseg app --weights RUN_DIR`."
        )
        st.stop()
    run, predictor, controls = sidebar(runs)
    images = gather_images(options.max_upload_mb)
    modified = run.checkpoint.stat().st_mtime_ns
    for index, (name, image, digest) in enumerate(images):
        floor = logic.detection_floor(controls.score_threshold)
        pred = detect(str(run.checkpoint), modified, digest, floor, image)
        show_result(index, name, image, pred, predictor, controls)


main()
