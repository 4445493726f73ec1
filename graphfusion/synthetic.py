"""A generated e-commerce shop with known ground truth.

:func:`generate_shop` writes a complete, self-consistent shop (taxonomy, brands, suppliers,
production batches, products with images, users, interactions, reviews, questions with
answers and follows) into a directory, together with ``ground_truth.json`` that records the
hidden facts the data was drawn from: which suppliers and batches are defective, each user's
taste and the correct answers of every question. Pipelines can load the CSV files like any
other source and be scored against the ground truth.

Everything is drawn from :func:`numpy.random.default_rng` streams derived from ``seed`` (one
stream per stage, no global random state, no Python ``hash()``), so the same ``(size, seed)``
always produces byte-identical files, images included.

Besides the keys every consumer can rely on (``seed``, ``size``, ``defective_batches``,
``defective_suppliers``, ``batch_defect_rate``, ``supplier_defect_rate``, ``product_style``,
``user_preferences``, ``answers``, ``defective_products``), ``ground_truth.json`` holds
``at_risk_products`` (products of defective batches without a complaint review yet),
``complaint_reviews`` (ids of reviews that report a defect), ``image_defects`` (product id to
the defects drawn on its image: ``scratches``, ``blotches``, ``washout``) and
``product_attributes`` (material, yes/no features, sizes, battery life per product).

How plainly the planted defects show is a setting, ``defect_signal`` (see
:class:`DefectSignal` and :data:`DEFECT_SIGNALS`): ``"clear"`` (the default) makes them easy to
see (most reviews of a defective item complain, with a low rating), which suits tests and demos;
``"realistic"`` makes them moderate and noisy (fewer and milder complaints, complaints with good
ratings, low ratings for reasons that are no defect, good batches of bad suppliers, suppliers of
very different sizes), which suits benchmarks of defect detection. The setting only changes
which supplier made each batch and which batches are defective (so the ``supplier_id`` of
batches and products), the damage drawn on product photos, the reviews and the ground truth:
the taxonomy, the other product fields, the users, interactions, questions and follows are
byte for byte the same for every setting.

Example:
    >>> from graphfusion.synthetic import generate_shop
    >>> manifest = generate_shop("/tmp/shop", "tiny", seed=0)  # doctest: +SKIP
    >>> manifest.counts["products"]  # doctest: +SKIP
    40
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from graphfusion.errors import ValidationError
from graphfusion.progress import progress_bar
from graphfusion.values import home_path

__all__ = [
    "CSV_FILES",
    "GeneratorArgumentError",
    "OutputFolderError",
    "DEFECT_SIGNALS",
    "FORMAT_VERSION",
    "GENERATOR",
    "IMAGE_SIZE",
    "SIZES",
    "DefectSignal",
    "ShopManifest",
    "ShopSize",
    "generate_shop",
]

#: Value of the ``generator`` field of the manifest; marks a directory as ours.
GENERATOR = "graphfusion.synthetic"
#: Version of the generated layout, written to the manifest.
FORMAT_VERSION = 1
#: Width and height of the generated product images, in pixels.
IMAGE_SIZE = 64


class GeneratorArgumentError(ValidationError, ValueError):
    """A generator's argument is wrong (also a ``ValueError``, as it was)."""


class OutputFolderError(ValidationError, FileExistsError):
    """A generator's output folder cannot take the shop: a file, a foreign non-empty folder,
    or a folder that cannot be made (also a ``FileExistsError``, as it was)."""


IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class ShopSize:
    """The dimensions of a generated shop.

    Attributes:
        users: Number of users.
        products: Number of products (and product images).
        top_categories: Number of level-0 categories.
        categories: Number of leaf (level-1) categories; products belong to leaves. The
            taxonomy file holds ``top_categories + categories`` rows.
        brands: Number of brands.
        suppliers: Number of suppliers.
        batches: Number of production batches (at least two per supplier).
        colours: Number of product colours in use.
        interactions: Target number of interaction rows (approximate).
        reviews: Target number of reviews (at most one per purchase).
        questions: Number of customer questions.
        follows_per_user: Mean number of users each user follows.
        light_user_share: Share of users with only one or two views.
    """

    users: int
    products: int
    top_categories: int
    categories: int
    brands: int
    suppliers: int
    batches: int
    colours: int
    interactions: int
    reviews: int
    questions: int
    follows_per_user: float
    light_user_share: float


#: The available presets: ``tiny`` for tests, ``small`` for demos, ``bench`` for benchmarks.
SIZES: dict[str, ShopSize] = {
    "tiny": ShopSize(
        users=60,
        products=40,
        top_categories=3,
        categories=6,
        brands=5,
        suppliers=4,
        batches=10,
        colours=6,
        interactions=1_500,
        reviews=120,
        questions=40,
        follows_per_user=3.0,
        light_user_share=0.0,
    ),
    "small": ShopSize(
        users=1_000,
        products=500,
        top_categories=4,
        categories=12,
        brands=20,
        suppliers=15,
        batches=60,
        colours=10,
        interactions=20_000,
        reviews=2_000,
        questions=400,
        follows_per_user=5.0,
        light_user_share=0.02,
    ),
    "bench": ShopSize(
        users=10_000,
        products=5_000,
        top_categories=6,
        categories=24,
        brands=60,
        suppliers=40,
        batches=300,
        colours=12,
        interactions=200_000,
        reviews=20_000,
        questions=4_000,
        follows_per_user=5.0,
        light_user_share=0.02,
    ),
}


@dataclass(frozen=True)
class DefectSignal:
    """How the planted defects show in a generated shop.

    Attributes:
        supplier_share: Share of the suppliers that are defective (at least one is).
        bad_batch_share: Share of a defective supplier's batches that are defective (rounded
            up, but at least one of its batches stays good when it has more than
            ``all_bad_up_to`` batches).
        all_bad_up_to: A defective supplier with at most this many batches has only defective
            batches.
        stray_batch_share: Share of a good supplier's batches that are defective anyway (a
            one-off bad lot does not make a defective supplier).
        bad_rate: Range of the hidden defect rate of a defective batch (the share of its
            reviewed items that are defective).
        good_rate: Range of the hidden defect rate of any other batch.
        report: Share of the reviews of a defective item that report the defect.
        false_report: Share of the reviews of a fine item that report a defect anyway.
        complaint_ratings: Probabilities of the ratings 1 to 5 of a review that reports a
            defect.
        image_share: Share of the products of a defective batch whose photo shows damage.
        supplier_skew: Spread (lognormal sigma) of the suppliers' shares of the batches; 0
            gives every supplier about the same number of batches.
        service_low: Range of a per-supplier probability that a review which reports no defect
            gives 1 or 2 stars for another reason (delivery, price, fit); ``(0, 0)`` for none
            beyond the ordinary rating noise.
    """

    supplier_share: float
    bad_batch_share: float
    all_bad_up_to: int
    stray_batch_share: float
    bad_rate: tuple[float, float]
    good_rate: tuple[float, float]
    report: float
    false_report: float
    complaint_ratings: tuple[float, float, float, float, float]
    image_share: float
    supplier_skew: float
    service_low: tuple[float, float]


#: The defect-signal settings of :func:`generate_shop`. ``clear``: about half of a defective
#: batch's reviewed items are defective and 80% of their reviews complain, with 1-3 stars (4% of
#: other reviews complain too); 15% of the suppliers are defective, with 70% defective batches;
#: 60% of the defective products' photos show damage. ``realistic``: 15-35% of a defective
#: batch's items are defective and 60% of their reviews say so, a quarter of those with 4 or 5
#: stars (3% of other reviews complain); 30% of the suppliers are defective, with half of
#: their batches defective, and 3% of other suppliers' batches are defective too; 20% of the
#: defective products' photos show damage; suppliers differ widely in size; and every supplier
#: gets 0-10% low ratings that report no defect (its service).
DEFECT_SIGNALS: dict[str, DefectSignal] = {
    "clear": DefectSignal(
        supplier_share=0.15,
        bad_batch_share=0.7,
        all_bad_up_to=3,
        stray_batch_share=0.0,
        bad_rate=(0.4, 0.6),
        good_rate=(0.02, 0.05),
        report=0.8,
        false_report=0.04,
        complaint_ratings=(0.55, 0.35, 0.10, 0.0, 0.0),
        image_share=0.6,
        supplier_skew=0.0,
        service_low=(0.0, 0.0),
    ),
    "realistic": DefectSignal(
        supplier_share=0.3,
        bad_batch_share=0.5,
        all_bad_up_to=1,
        stray_batch_share=0.03,
        bad_rate=(0.15, 0.35),
        good_rate=(0.02, 0.05),
        report=0.6,
        false_report=0.03,
        complaint_ratings=(0.30, 0.25, 0.20, 0.15, 0.10),
        image_share=0.2,
        supplier_skew=1.0,
        service_low=(0.0, 0.10),
    ),
}


@dataclass(frozen=True)
class ShopManifest:
    """What :func:`generate_shop` wrote.

    Attributes:
        path: The output directory.
        size: The preset name.
        seed: The seed.
        counts: Rows per file, keyed by file stem (``"products"`` for ``products.csv``);
            ``"images"`` counts the PNG files.
    """

    path: Path
    size: str
    seed: int
    counts: dict[str, int]


# ---------------------------------------------------------------------------------------------
# Static vocabulary
# ---------------------------------------------------------------------------------------------

_START = int(np.datetime64("2023-01-01T00:00:00", "s").astype(np.int64))
_END = int(np.datetime64("2024-12-31T23:59:59", "s").astype(np.int64))
_DAY = 86_400

#: The CSV tables a generated shop holds (file stems).
CSV_FILES = (
    "categories",
    "brands",
    "suppliers",
    "batches",
    "products",
    "users",
    "interactions",
    "reviews",
    "questions",
    "answers",
    "follows",
)
_IMAGE_NAME = re.compile(r"^p\d+\.png$")


@dataclass(frozen=True)
class _Leaf:
    name: str
    noun: str
    price: float
    materials: tuple[str, ...]
    features: tuple[str, ...]
    sizes: bool = False
    battery: bool = False


@dataclass(frozen=True)
class _Top:
    name: str
    group: str
    tint: tuple[int, int, int]
    leaves: tuple[_Leaf, ...]


_TAXONOMY: tuple[_Top, ...] = (
    _Top(
        "Apparel",
        "apparel",
        (232, 226, 216),
        (
            _Leaf(
                "T-Shirts",
                "t-shirt",
                18,
                ("cotton", "organic cotton", "linen", "polyester"),
                ("machine washable", "pre-shrunk"),
                sizes=True,
            ),
            _Leaf(
                "Hoodies",
                "hoodie",
                45,
                ("cotton", "fleece", "polyester"),
                ("machine washable", "lined"),
                sizes=True,
            ),
            _Leaf(
                "Jackets",
                "jacket",
                90,
                ("nylon", "denim", "wool", "polyester"),
                ("waterproof", "lined"),
                sizes=True,
            ),
            _Leaf("Caps", "cap", 20, ("cotton", "wool", "polyester"), ("adjustable", "breathable")),
            _Leaf(
                "Scarves",
                "scarf",
                25,
                ("wool", "cashmere", "cotton"),
                ("machine washable", "hypoallergenic"),
            ),
        ),
    ),
    _Top(
        "Home",
        "home",
        (220, 230, 220),
        (
            _Leaf(
                "Mugs",
                "mug",
                12,
                ("ceramic", "stoneware", "glass", "enamel"),
                ("dishwasher safe", "microwave safe"),
            ),
            _Leaf("Lamps", "lamp", 55, ("metal", "wood", "glass"), ("dimmable", "battery powered")),
            _Leaf(
                "Cushions",
                "cushion",
                22,
                ("cotton", "velvet", "linen"),
                ("machine washable", "hypoallergenic"),
            ),
            _Leaf(
                "Vases", "vase", 30, ("ceramic", "glass", "stoneware"), ("watertight", "handmade")
            ),
            _Leaf(
                "Blankets",
                "blanket",
                40,
                ("wool", "fleece", "cotton"),
                ("machine washable", "hypoallergenic"),
            ),
        ),
    ),
    _Top(
        "Electronics",
        "electronics",
        (218, 224, 236),
        (
            _Leaf(
                "Headphones",
                "headset",
                80,
                ("plastic", "aluminium"),
                ("wireless", "noise cancelling"),
                battery=True,
            ),
            _Leaf(
                "Chargers",
                "charger",
                25,
                ("plastic", "aluminium"),
                ("fast charging", "compatible with USB-C"),
            ),
            _Leaf(
                "Speakers",
                "speaker",
                60,
                ("plastic", "aluminium", "fabric"),
                ("waterproof", "wireless"),
                battery=True,
            ),
            _Leaf("Keyboards", "keyboard", 70, ("plastic", "aluminium"), ("backlit", "wireless")),
            _Leaf(
                "Smartwatches",
                "smartwatch",
                150,
                ("aluminium", "steel", "plastic"),
                ("waterproof", "compatible with Android"),
                battery=True,
            ),
        ),
    ),
    _Top(
        "Sports",
        "sports",
        (234, 230, 212),
        (
            _Leaf(
                "Yoga Mats", "yoga mat", 30, ("rubber", "cork", "foam"), ("non-slip", "washable")
            ),
            _Leaf(
                "Water Bottles",
                "water bottle",
                18,
                ("steel", "plastic", "glass"),
                ("dishwasher safe", "insulated"),
            ),
            _Leaf(
                "Backpacks",
                "backpack",
                50,
                ("nylon", "canvas", "polyester"),
                ("waterproof", "laptop friendly"),
            ),
            _Leaf(
                "Dumbbells",
                "dumbbell set",
                45,
                ("steel", "cast iron", "vinyl"),
                ("adjustable", "non-slip"),
            ),
        ),
    ),
    _Top(
        "Kitchen",
        "home",
        (228, 222, 232),
        (
            _Leaf(
                "Frying Pans",
                "frying pan",
                35,
                ("cast iron", "steel", "aluminium"),
                ("dishwasher safe", "induction compatible"),
            ),
            _Leaf(
                "Kitchen Knives",
                "kitchen knife",
                40,
                ("steel", "ceramic"),
                ("dishwasher safe", "rust resistant"),
            ),
            _Leaf(
                "Cutting Boards",
                "cutting board",
                20,
                ("bamboo", "wood", "plastic"),
                ("dishwasher safe", "reversible"),
            ),
            _Leaf(
                "Teapots",
                "teapot",
                28,
                ("ceramic", "glass", "cast iron"),
                ("dishwasher safe", "handmade"),
            ),
        ),
    ),
    _Top(
        "Toys",
        "toys",
        (236, 222, 224),
        (
            _Leaf(
                "Puzzles", "puzzle", 15, ("cardboard", "wood"), ("suitable for kids", "recycled")
            ),
            _Leaf(
                "Plush Toys",
                "plush toy",
                20,
                ("polyester", "cotton"),
                ("machine washable", "suitable for toddlers"),
            ),
            _Leaf(
                "Building Sets",
                "building set",
                35,
                ("plastic", "wood"),
                ("compatible with other brands", "suitable for kids"),
            ),
            _Leaf(
                "Board Games",
                "board game",
                30,
                ("cardboard", "wood"),
                ("suitable for kids", "travel sized"),
            ),
        ),
    ),
)

_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (205, 40, 40)),
    ("blue", (40, 85, 205)),
    ("green", (40, 150, 60)),
    ("yellow", (235, 205, 40)),
    ("black", (30, 30, 32)),
    ("pink", (235, 120, 175)),
    ("grey", (125, 125, 128)),
    ("purple", (120, 55, 165)),
    ("orange", (240, 130, 30)),
    ("brown", (120, 78, 40)),
    ("teal", (25, 150, 150)),
    ("navy", (20, 32, 95)),
)

#: Colours of drawn image defects (exact: they are drawn after the pixel noise).
_SCRATCH_RGB = (28, 24, 20)
_BLOTCH_RGB = (60, 44, 30)

_PRICE_LEVELS = ("low", "mid", "high")
_PRICE_FACTORS = np.array([0.6, 1.0, 1.8])
_PRICE_LEVEL_P = np.array([0.35, 0.45, 0.20])
_APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")

_BRAND_NAMES = (
    "Acme",
    "Lumen",
    "Northpeak",
    "Verdant",
    "Cobalt & Co",
    "Halden",
    "Brightwell",
    "Oakline",
    "Kestrel",
    "Marisol",
    "Tundra",
    "Pebble",
    "Aurora",
    "Foxglove",
    "Ironbark",
    "Solstice",
    "Wren",
    "Calder",
    "Juniper",
    "Meridian",
    "Quill",
    "Sable",
    "Tidewater",
    "Zephyr",
)
_BRAND_PREFIXES = ("Nord", "Vel", "Kor", "Sol", "Bri", "Tam", "Oro", "Lux", "Zen", "Pax")
_BRAND_SUFFIXES = ("ana", "ex", "io", "ora", "ix", "um")

_SUPPLIER_PREFIXES = (
    "Northwind",
    "Apex",
    "Bluewater",
    "Golden Gate",
    "Summit",
    "Redwood",
    "Silverline",
    "Harbor",
    "Evergreen",
    "Pioneer",
    "Crescent",
    "Lakeside",
)
_SUPPLIER_SUFFIXES = (
    "Manufacturing",
    "Industries",
    "Trading",
    "Works",
    "Goods",
    "Supply Co",
)
_COUNTRIES = (
    "China",
    "Vietnam",
    "India",
    "Bangladesh",
    "Turkey",
    "Portugal",
    "Poland",
    "Mexico",
    "Germany",
    "United States",
    "Italy",
    "Indonesia",
)
_ROLES = (
    "manufacturer",
    "manufacturer;distributor",
    "manufacturer;importer",
    "manufacturer;importer;distributor",
)
_ROLE_P = np.array([0.45, 0.3, 0.15, 0.1])

_FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jack",
    "Kira", "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Will", "Xena", "Yusuf", "Zoe", "Aisha", "Bruno", "Carmen", "Dmitri",
    "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Lena", "Mateo", "Nina", "Omar",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Müller", "Garcia", "Rossi", "Novak", "Kowalski", "Dubois", "Jensen", "Silva",
    "Tanaka", "Khan", "Nguyen", "Okafor", "Larsen", "Ivanova", "Fischer", "Moreau", "Costa",
    "Brown", "Wilson", "Santos", "Weber", "Kim", "Patel", "Andersen", "Horvat", "Meyer",
    "Lopez", "Schmidt", "Berg",
)  # fmt: skip
_OCCUPATIONS = (
    "student", "engineer", "teacher", "nurse", "designer", "sales", "retired", "developer",
    "manager", "artist", "doctor", "lawyer", "chef", "writer", "technician", "self-employed",
)  # fmt: skip
_LOCATIONS = (
    "Berlin", "London", "Paris", "Madrid", "Rome", "Amsterdam", "Vienna", "Warsaw", "Prague",
    "Lisbon", "Dublin", "Stockholm", "Oslo", "Copenhagen", "Zurich", "Brussels", "New York",
    "Chicago", "Toronto", "Austin", "Seattle", "Boston", "Munich", "Hamburg", "Milan",
)  # fmt: skip
_MODEL_WORDS = (
    "Classic", "Everyday", "Pro", "Essential", "Urban", "Studio", "Travel", "Premium",
    "Lite", "Signature", "Nova", "Terra",
)  # fmt: skip
_TAGLINES = (
    "Perfect for everyday use.",
    "A great gift idea.",
    "Designed to last.",
    "Easy to care for.",
    "Our best seller in this range.",
    "Made with attention to detail.",
)

# Review text building blocks.
_OPENERS = (
    "I bought this {noun} {when}.",
    "Ordered the {colour} {noun} from {brand} {when}.",
    "This is my second {brand} {noun}.",
    "Got this {noun} as a gift for my {relation}.",
    "Needed a new {noun} and picked this one.",
    "I have been using this {noun} for {duration} now.",
    "Picked up the {brand} {noun} in {colour} {when}.",
    "My {relation} recommended this {noun} to me.",
)
_WHEN = (
    "last month",
    "a few weeks ago",
    "during the sale",
    "for my new flat",
    "on a whim",
    "after reading the reviews",
)
_RELATIONS = ("sister", "brother", "partner", "dad", "mum", "friend", "colleague", "son")
_DURATIONS = ("a week", "two weeks", "a month", "three months", "half a year")
_ATTRIBUTE_LINES = (
    "The {colour} colour looks just like the photos.",
    "The {colour} is slightly {shade} than pictured.",
    "The {material} feels {feel}.",
    "You can tell it is real {material}.",
    "Typical {brand} quality.",
    "The {colour} finish goes with everything.",
    "Compared to other {category} I own, it feels {feel}.",
    "Nice {colour} {material}, exactly what I wanted from {brand}.",
)
_SHADES = ("lighter", "darker", "brighter", "more muted")
_FEELS = ("solid", "sturdy", "nice and light", "well made", "premium", "comfortable")
_PRAISE = (
    "Really happy with it.",
    "Would buy again.",
    "Works exactly as described.",
    "Great value for the price.",
    "Exceeded my expectations.",
    "Highly recommended.",
    "No complaints so far.",
    "Five stars from me.",
)
_NEUTRAL = (
    "It's okay for the price.",
    "Does the job, nothing special.",
    "Decent, but I expected a bit more.",
    "Average overall.",
    "Fine for everyday use.",
)
_MEH = (
    "Not really my style in the end.",
    "Too expensive for what it is.",
    "Smaller than I expected.",
    "The {colour} is not the shade I hoped for.",
    "Delivery took ages.",
)
_COMPLAINT_WRAPS = (
    "Unfortunately {c}.",
    "Sadly {c}.",
    "Very disappointed: {c}.",
    "Quality control seems poor, {c}.",
    "{C}.",
    "Returned it because {c}.",
    "Looked great at first, but {c}.",
)
_COMPLAINT_CLOSERS = (
    "Asked for a refund.",
    "I will not buy from {brand} again.",
    "Waiting for a replacement.",
    "Customer service was slow to respond.",
    "Check yours carefully.",
    "Such a shame.",
)
_COMPLAINTS_GENERIC = (
    "it broke after a week",
    "it arrived damaged",
    "it fell apart within a month",
    "a part was missing from the box",
    "it cracked after a few days",
    "it was clearly a faulty unit",
)
_COMPLAINTS: dict[str, tuple[str, ...]] = {
    "apparel": (
        "the stitching came apart",
        "the seams split after two washes",
        "the colour faded after one wash",
        "the zip broke on the first day",
        "there were holes in the fabric",
    ),
    "home": (
        "the paint peeled off",
        "the handle snapped off",
        "it arrived cracked",
        "the finish is chipped",
        "it wobbles because the base is uneven",
        "the coating is flaking off",
    ),
    "electronics": (
        "it stopped working after two days",
        "the battery stopped holding a charge",
        "it overheats and smells of burnt plastic",
        "one side went silent after a week",
        "it will not turn on anymore",
        "the port came loose",
    ),
    "sports": (
        "the strap snapped",
        "it started leaking",
        "the foam tore on the first use",
        "the paint peeled off",
    ),
    "toys": (
        "pieces broke off on the first day",
        "the seams split and the stuffing came out",
        "several pieces were missing",
        "the paint peeled off",
    ),
}
_TITLES_GOOD = (
    "Great {noun}",
    "Love it",
    "Exactly as described",
    "Lovely {colour} {noun}",
    "Solid purchase",
    "Very happy",
    "Good {brand} quality",
)
_TITLES_NEUTRAL = ("It's okay", "Decent", "Average {noun}", "Does the job")
_TITLES_BAD = ("Not for me", "Overpriced", "Meh", "Not great")
_TITLES_COMPLAINT = (
    "Broke quickly",
    "Poor quality",
    "Disappointed",
    "Defective",
    "Do not buy",
    "Fell apart",
    "Faulty {noun}",
)


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def generate_shop(
    out: str | Path,
    size: str = "tiny",
    seed: int = 0,
    *,
    progress: bool = False,
    defect_signal: str = "clear",
) -> ShopManifest:
    """Generate a synthetic shop with known ground truth into a directory.

    The directory receives ``categories.csv``, ``brands.csv``, ``suppliers.csv``,
    ``batches.csv``, ``products.csv``, ``users.csv``, ``interactions.csv``, ``reviews.csv``,
    ``questions.csv``, ``answers.csv``, ``follows.csv``, ``images/<product_id>.png``,
    ``ground_truth.json`` and ``manifest.json``. The same ``(size, seed)`` always produces
    byte-identical files.

    Args:
        out: Output directory (a leading ``~`` is the home folder). Created if missing. If it
            exists it must be empty or hold a shop written earlier by this function
            (recognised by its ``manifest.json``), whose files are then overwritten; stale
            ``images/p*.png`` files of that earlier shop are removed. Other files are never
            deleted.
        size: Preset name, a key of :data:`SIZES` (``"tiny"``, ``"small"`` or ``"bench"``,
            or a :class:`ShopSize` of one's own added to it, which is checked first).
        seed: Non-negative random seed.
        progress: Show a tqdm progress bar.
        defect_signal: How plainly the planted defects show, a key of :data:`DEFECT_SIGNALS`
            (``"clear"`` or ``"realistic"``), recorded in the manifest. ``"clear"`` writes the
            same data files and photos as earlier versions, byte for byte.

    Returns:
        The manifest of the written shop.

    Raises:
        GeneratorArgumentError: If ``size`` or ``defect_signal`` is unknown, the preset
            cannot be made (a count out of range, more categories than the taxonomy holds,
            fewer than two batches per supplier or fewer products than batches), or ``seed``
            is negative or not an integer (a ``ValidationError`` and a ``ValueError``).
        OutputFolderError: If ``out`` is a file, a non-empty directory that was not written
            by this function, or cannot be made or written into (a ``ValidationError`` and a
            ``FileExistsError``). A file that cannot be written half-way (a full disk) leaves
            an incomplete shop, marked so in its ``manifest.json``, that a second run
            finishes.
    """
    if not isinstance(size, str) or size not in SIZES:
        known = ", ".join(sorted(SIZES))
        raise GeneratorArgumentError(f"unknown shop size {size!r}; expected one of: {known}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise GeneratorArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if seed < 0:
        raise GeneratorArgumentError(f"seed must be a non-negative integer, got {seed}")
    if not isinstance(defect_signal, str) or defect_signal not in DEFECT_SIGNALS:
        known = ", ".join(sorted(DEFECT_SIGNALS))
        raise GeneratorArgumentError(
            f"unknown defect_signal {defect_signal!r}; expected one of: {known}"
        )
    spec = SIZES[size]
    _check_size(size, spec)
    path = home_path(out, "out")
    _prepare_dir(path)

    stages = 10
    with _progress(progress, stages) as step, _writing(path, "shop"):
        shop = _Shop(spec, size, seed, path, step, DEFECT_SIGNALS[defect_signal])
        counts = shop.run()
        manifest = {
            "generator": GENERATOR,
            "version": FORMAT_VERSION,
            "size": size,
            "seed": seed,
            "defect_signal": defect_signal,
            "complete": True,
            "counts": counts,
        }
        _write_json(path / "manifest.json", manifest)
    return ShopManifest(path=path, size=size, seed=seed, counts=dict(counts))


def _check_size(name: str, spec: ShopSize) -> None:
    """Refuse a preset the generator cannot make as asked (a ``ShopSize`` of one's own added
    to :data:`SIZES`): counts that are no integers or out of range, more leaf categories than
    the taxonomy holds, fewer batches than two per supplier, fewer products than batches (a
    batch without products, hence perhaps no at-risk product).

    Raises:
        GeneratorArgumentError: Naming the preset, the field, its bounds and its value.
    """

    def fail(message: str) -> NoReturn:
        raise GeneratorArgumentError(f"preset {name!r}: {message}")

    for field, least in (("users", 1), ("products", 1), ("brands", 1), ("suppliers", 1),
                         ("batches", 1), ("interactions", 0), ("reviews", 0),
                         ("questions", 0)):  # fmt: skip
        value = getattr(spec, field)
        if not _is_int(value) or value < least:
            fail(f"{field} must be an integer of at least {least}, got {value!r}")
    for field, most in (("colours", len(_COLOURS)), ("top_categories", len(_TAXONOMY))):
        value = getattr(spec, field)
        if not _is_int(value) or not 1 <= value <= most:
            fail(f"{field} must be an integer from 1 to {most}, got {value!r}")
    tops = spec.top_categories
    most = max(c for c in range(tops, 1 + 5 * tops) if _leaves_fit(tops, c))
    if not _is_int(spec.categories) or not tops <= spec.categories <= most:
        fail(
            f"categories must be an integer from {tops} to {most} (the leaves that "
            f"top_categories={tops} hold), got {spec.categories!r}"
        )
    if spec.batches < 2 * spec.suppliers:
        fail(
            f"batches ({spec.batches}) must be at least two per supplier "
            f"({2 * spec.suppliers} for {spec.suppliers} suppliers)"
        )
    if spec.products < spec.batches:
        fail(f"products ({spec.products}) must be at least batches ({spec.batches})")
    if not _is_number(spec.follows_per_user) or not 0 <= spec.follows_per_user < math.inf:
        fail(f"follows_per_user must be a number of at least 0, got {spec.follows_per_user!r}")
    if not _is_number(spec.light_user_share) or not 0 <= spec.light_user_share <= 1:
        fail(f"light_user_share must be a number from 0 to 1, got {spec.light_user_share!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _leaf_counts(tops: int, categories: int) -> list[int]:
    """Leaves per top-level category: an even split of ``categories``, the first ones one
    more (as :meth:`_Shop.taxonomy` takes them)."""
    per_top, extra = divmod(categories, tops)
    return [per_top + (1 if t < extra else 0) for t in range(tops)]


def _leaves_fit(tops: int, categories: int) -> bool:
    """Whether the first ``tops`` top-level categories hold that many leaves, split evenly."""
    counts = _leaf_counts(tops, categories)
    return all(k <= len(top.leaves) for k, top in zip(counts, _TAXONOMY, strict=False))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@contextmanager
def _writing(path: Path, what: str) -> Iterator[None]:
    """Turn an error writing a generator's files (a full disk, a quota, a folder in the way)
    into an :class:`OutputFolderError` that names the file and says the folder is incomplete."""
    try:
        yield
    except OutputFolderError:
        raise
    except OSError as exc:
        where = exc.filename if exc.filename is not None else path
        raise OutputFolderError(
            f"cannot write {where}: {exc.strerror or exc}; {path} now holds an incomplete "
            f"{what} (its manifest.json says complete: false): free the space or clear the "
            "way and run again to finish it"
        ) from None


@contextmanager
def _progress(
    enabled: bool, total: int, desc: str = "synthetic shop"
) -> Iterator[Callable[[str], None]]:
    bar = progress_bar(total=total, desc=desc, unit="stage", progress=enabled)

    def step(label: str) -> None:
        bar.set_postfix_str(label, refresh=False)
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()


def _prepare_dir(
    path: Path,
    *,
    generator: str = GENERATOR,
    version: int = FORMAT_VERSION,
    what: str = "synthetic shop",
    images: bool = True,
) -> None:
    """Make ``path`` ready for a generator: new or empty, or already marked as ``generator``'s
    (then it is overwritten); it is marked before anything is written, so an interrupted run
    can be resumed by running again."""
    _check_dir(path, generator=generator, what=what, images=images)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(f"cannot make {path}: {exc.strerror or exc}") from None
    folder = path / "images"
    try:
        if images:
            folder.mkdir(exist_ok=True)
        _write_json(
            path / "manifest.json",
            {"generator": generator, "version": version, "complete": False, "counts": {}},
        )
    except OSError as exc:  # read-only, another user's folder, a full disk
        raise OutputFolderError(f"cannot write into {path}: {exc.strerror or exc}") from None


def _check_dir(
    path: Path, *, generator: str = GENERATOR, what: str = "synthetic shop", images: bool = True
) -> None:
    """Refuse an output folder a generator cannot take, writing nothing: a file, a non-empty
    folder not marked as ``generator``'s, an ``images`` entry that is no folder.

    Raises:
        OutputFolderError: Naming the folder and what is wrong with it.
    """
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        manifest = path / "manifest.json"
        if not manifest.is_file() or not _is_our_manifest(manifest, generator):
            raise OutputFolderError(
                f"{path} is not empty and holds no {what} manifest; refusing to write "
                "into it (choose an empty or new directory)"
            )
    folder = path / "images"
    if images and folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder} exists and is not a directory")


def _is_our_manifest(path: Path, generator: str = GENERATOR) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == generator


def _write_json(path: Path, data: Any) -> None:
    path.write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
    )


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def _ids(prefix: str, n: int, width: int) -> list[str]:
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _iso(seconds: IntArray) -> list[str]:
    return [str(s) for s in np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")]


def _gumbel(rng: np.random.Generator, shape: int | tuple[int, ...]) -> FloatArray:
    u = rng.random(shape)
    return np.asarray(-np.log(-np.log(np.clip(u, 1e-12, 1.0 - 1e-12))), dtype=np.float64)


@dataclass(frozen=True)
class _Events:
    """Interaction rows drawn from (user, product) views: the table and which views led to a
    purchase (with its time) or a favourite."""

    frame: pd.DataFrame
    buy: BoolArray
    fav: BoolArray
    buy_ts: IntArray


def _draw_events(
    rng: np.random.Generator,
    u: IntArray,
    p: IntArray,
    a: FloatArray,
    thr: float,
    can_fav: BoolArray,
    first_ts: IntArray,
    user_ids: Sequence[str],
    product_ids: Sequence[str],
) -> _Events:
    """Views (one row per pair), purchases and favourites following the affinity ``a`` above
    the threshold ``thr``, with weights and times (a view between ``first_ts`` and the end),
    sorted by user, time, product and kind."""
    n_rows = len(u)
    buy = rng.random(n_rows) < _sigmoid(1.3 * (a - thr))
    fav = (rng.random(n_rows) < _sigmoid(1.3 * (a - thr - 0.7))) & can_fav
    view_w = 1 + rng.poisson(0.3 + 1.5 * _sigmoid(a - 1.5))
    buy_w = 1 + rng.poisson(0.12, n_rows)
    view_ts = first_ts + (rng.random(n_rows) * (_END - first_ts - _DAY)).astype(np.int64)
    buy_ts = np.minimum(view_ts + rng.exponential(1.5 * _DAY, n_rows).astype(np.int64), _END)
    fav_ts = np.minimum(view_ts + rng.exponential(0.5 * _DAY, n_rows).astype(np.int64), _END)
    n_buy, n_fav = int(buy.sum()), int(fav.sum())
    kinds = np.repeat(np.arange(3, dtype=np.int64), [n_rows, n_buy, n_fav])
    all_u = np.concatenate([u, u[buy], u[fav]])
    all_p = np.concatenate([p, p[buy], p[fav]])
    all_ts = np.concatenate([view_ts, buy_ts[buy], fav_ts[fav]])
    all_w = np.concatenate([view_w, buy_w[buy], np.ones(n_fav, np.int64)])
    order = np.lexsort((kinds, all_p, all_ts, all_u))
    type_names = np.array(["VIEWED", "PURCHASED", "FAVORITED"])
    frame = pd.DataFrame(
        {
            "user_id": np.array(user_ids)[all_u[order]],
            "product_id": np.array(product_ids)[all_p[order]],
            "type": type_names[kinds[order]],
            "ts": _iso(all_ts[order]),
            "weight": all_w[order].astype(np.float64),
        }
    )
    return _Events(frame, buy, fav, buy_ts)


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _pick(options: Sequence[str], r: int) -> str:
    return options[r % len(options)]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _brand_names(n: int) -> list[str]:
    names = list(_BRAND_NAMES)
    names += [p + s for s in _BRAND_SUFFIXES for p in _BRAND_PREFIXES]
    if n > len(names):
        names += [f"Brand {i}" for i in range(len(names), n)]
    return names[:n]


def _stratified(
    rng: np.random.Generator,
    groups: IntArray,
    n_groups: int,
    share: FloatArray,
    eligible: BoolArray,
) -> BoolArray:
    """Per group, mark a stochastically rounded ``share`` of its eligible items, at random."""
    idx = np.flatnonzero(eligible)
    g = groups[idx]
    order = np.lexsort((rng.random(idx.size), g))
    sorted_g = g[order]
    rank = np.arange(idx.size) - np.searchsorted(sorted_g, sorted_g, "left")
    count = np.bincount(g, minlength=n_groups)
    quota = np.floor(share * count + rng.random(n_groups)).astype(np.int64)
    out = np.zeros(groups.size, dtype=bool)
    out[idx[order]] = rank < quota[sorted_g]
    return out


def _top_k_rows(scores: NDArray[np.floating[Any]], k: IntArray) -> tuple[IntArray, IntArray]:
    """Per row, the column indices of the ``k[row]`` largest scores (largest first)."""
    n_rows, n_cols = scores.shape
    kmax = int(k.max()) if n_rows else 0
    if kmax == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    if kmax < n_cols:
        top = np.argpartition(-scores, kmax - 1, axis=1)[:, :kmax]
    else:
        top = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    keep = np.arange(top.shape[1])[None, :] < k[:, None]
    rows = np.broadcast_to(np.arange(n_rows)[:, None], top.shape)[keep]
    return rows.astype(np.int64), top[keep].astype(np.int64)


def _plan_defects(
    rng: np.random.Generator, sig: DefectSignal, n_sup: int, n_bat: int
) -> tuple[IntArray, IntArray, BoolArray, FloatArray]:
    """Which suppliers are defective, each batch's supplier (in supplier order), which batches
    are defective and each batch's hidden defect rate."""
    n_bad_sup = max(1, round(sig.supplier_share * n_sup))
    bad_sup = np.sort(rng.choice(n_sup, n_bad_sup, replace=False))
    share = np.full(n_sup, 1.0 / n_sup)
    if sig.supplier_skew > 0:
        weight = rng.lognormal(0.0, sig.supplier_skew, n_sup)
        share = weight / weight.sum()
    per_sup = np.full(n_sup, 2, dtype=np.int64)
    per_sup += rng.multinomial(n_bat - 2 * n_sup, share)
    batch_sup = np.repeat(np.arange(n_sup), per_sup)
    batch_bad = np.zeros(n_bat, dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(per_sup)])
    for s in bad_sup:
        k = int(per_sup[s])
        n_bad = k if k <= sig.all_bad_up_to else min(k - 1, math.ceil(sig.bad_batch_share * k))
        chosen = rng.choice(k, n_bad, replace=False)
        batch_bad[offsets[s] + chosen] = True
    if sig.stray_batch_share > 0:
        good_sup = ~np.isin(batch_sup, bad_sup)
        batch_bad |= good_sup & (rng.random(n_bat) < sig.stray_batch_share)
    rate = np.where(
        batch_bad, rng.uniform(*sig.bad_rate, n_bat), rng.uniform(*sig.good_rate, n_bat)
    ).round(4)
    return bad_sup.astype(np.int64), batch_sup.astype(np.int64), batch_bad, rate


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _base_shape(kind: int, x: FloatArray, y: FloatArray) -> BoolArray:
    r = np.sqrt(x * x + y * y)
    ax, ay = np.abs(x), np.abs(y)
    if kind == 0:  # circle
        m = r < 0.62
    elif kind == 1:  # square
        m = np.maximum(ax, ay) < 0.52
    elif kind == 2:  # triangle
        m = (y < 0.55) & (y > -0.6) & (ax < (y + 0.6) * 0.6)
    elif kind == 3:  # ring
        m = (r > 0.36) & (r < 0.66)
    elif kind == 4:  # cross
        m = ((ax < 0.18) & (ay < 0.68)) | ((ay < 0.18) & (ax < 0.68))
    elif kind == 5:  # diamond
        m = ax + ay < 0.7
    elif kind == 6:  # horizontal bar
        m = (ay < 0.24) & (ax < 0.78)
    elif kind == 7:  # vertical bar
        m = (ax < 0.24) & (ay < 0.78)
    elif kind == 8:  # saltire (x)
        m = ((np.abs(x - y) < 0.24) | (np.abs(x + y) < 0.24)) & (r < 0.8)
    elif kind == 9:  # hexagon
        m = np.maximum(ax * 0.866 + ay * 0.5, ay) < 0.58
    elif kind == 10:  # half disc
        m = (r < 0.68) & (y > -0.1)
    elif kind == 11:  # square frame
        m = (np.maximum(ax, ay) < 0.62) & (np.maximum(ax, ay) > 0.36)
    elif kind == 12:  # star
        theta = np.arctan2(y, x)
        m = r < 0.38 + 0.28 * np.cos(5 * theta)
    else:  # wide ellipse
        m = (x / 0.78) ** 2 + (y / 0.42) ** 2 < 1
    return np.asarray(m, dtype=np.bool_)


def _shape_masks(n: int) -> NDArray[np.float32]:
    """One binary shape mask per leaf category (index = shop-wide leaf index)."""
    coords = (np.arange(IMAGE_SIZE) + 0.5) / (IMAGE_SIZE / 2) - 1.0
    y, x = np.meshgrid(coords, coords, indexing="ij")
    masks = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i in range(n):
        kind, variant = i % 14, (i // 14) % 2
        if variant == 0:
            m = _base_shape(kind, x, y)
        else:  # two half-size copies side by side
            m = _base_shape(kind, (x + 0.48) * 2.1, y * 2.1) | _base_shape(
                kind, (x - 0.48) * 2.1, y * 2.1
            )
        masks[i] = m
    return masks


def _textures(n: int) -> NDArray[np.float32]:
    """A multiplicative texture per brand: plain, stripes, dots, checks, diagonals."""
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    out = np.ones((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for b in range(n):
        kind = b % 6
        period = 6 + 2 * ((b // 6) % 4)
        half = period // 2
        if kind == 0:
            pattern = np.zeros_like(xx, dtype=bool)
        elif kind == 1:
            pattern = (yy // half) % 2 == 0
        elif kind == 2:
            pattern = (xx // half) % 2 == 0
        elif kind == 3:
            cx, cy = xx % period - half, yy % period - half
            pattern = cx * cx + cy * cy <= (period / 4) ** 2 + 0.5
        elif kind == 4:
            pattern = ((xx // half) + (yy // half)) % 2 == 0
        else:
            pattern = ((xx + yy) // half) % 2 == 0
        out[b] = 1.0 - 0.4 * pattern.astype(np.float32)
    return out


def _save_image(pixels: NDArray[np.uint8], kind: int, params: IntArray, path: Path) -> None:
    """Write one product image, drawing its defects (if any) first."""
    pil = Image.fromarray(pixels, "RGB")
    if kind & 3:
        _draw_defects(pil, kind, params)
    pil.save(path, format="PNG", compress_level=6)


def _draw_defects(pil: Image.Image, kind: int, params: IntArray) -> None:
    """Draw dark scratches (``kind & 1``) and blotches (``kind & 2``) onto an image."""
    draw = ImageDraw.Draw(pil)
    last = IMAGE_SIZE - 1
    if kind & 1:
        for j in range(1 + int(params[5, 0]) % 3):
            x0, y0, length, turn = (int(v) for v in params[j])
            length = 18 + length % 20
            angle = 2 * math.pi * turn / IMAGE_SIZE
            dx, dy = round(length * math.cos(angle)), round(length * math.sin(angle))
            dx = dx if 0 <= x0 + dx <= last else -dx
            dy = dy if 0 <= y0 + dy <= last else -dy
            x1, y1 = min(max(x0 + dx, 0), last), min(max(y0 + dy, 0), last)
            draw.line((x0, y0, x1, y1), fill=_SCRATCH_RGB, width=1 + j % 2)
    if kind & 2:
        for j in range(1 + int(params[5, 1]) % 2):
            x0, y0, w, h = (int(v) for v in params[3 + j])
            w, h = 5 + w % 10, 5 + h % 10
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=_BLOTCH_RGB)


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


class _Shop:
    """Holds the state of one generation run; each stage uses its own random stream."""

    def __init__(
        self,
        spec: ShopSize,
        size: str,
        seed: int,
        path: Path,
        step: Callable[[str], None],
        signal: DefectSignal = DEFECT_SIGNALS["clear"],
    ) -> None:
        self.spec = spec
        self.signal = signal
        self.size = size
        self.seed = seed
        self.path = path
        self.step = step
        self.counts: dict[str, int] = {}
        self.gt: dict[str, Any] = {"seed": seed, "size": size}

    def rng(self, stage: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stage])

    def write(self, name: str, df: pd.DataFrame) -> None:
        _write_csv(df, self.path / f"{name}.csv")
        self.counts[name] = len(df)

    def run(self) -> dict[str, int]:
        self.taxonomy()
        self.step("taxonomy")
        self.suppliers()
        self.step("suppliers")
        self.products()
        self.step("products")
        self.images()
        self.step("images")
        self.users()
        self.step("users")
        self.interactions()
        self.step("interactions")
        self.reviews()
        self.step("reviews")
        self.questions()
        self.step("questions")
        self.follows()
        self.step("follows")
        self.ground_truth()
        self.step("ground truth")
        return {name: self.counts[name] for name in (*CSV_FILES, "images")}

    # -- taxonomy, brands ---------------------------------------------------------------------

    def taxonomy(self) -> None:
        spec = self.spec
        tops = _TAXONOMY[: spec.top_categories]
        leaves: list[_Leaf] = []
        leaf_top: list[int] = []
        for t, (top, k) in enumerate(
            zip(tops, _leaf_counts(spec.top_categories, spec.categories), strict=True)
        ):
            chosen = top.leaves[:k]
            leaves.extend(chosen)
            leaf_top.extend([t] * len(chosen))
        ids = _ids("c", len(tops) + len(leaves), 2)
        self.top_ids = ids[: len(tops)]
        self.leaf_ids = ids[len(tops) :]
        self.tops = tops
        self.leaves = leaves
        self.leaf_top = np.array(leaf_top, dtype=np.int64)
        self.write(
            "categories",
            pd.DataFrame(
                {
                    "id": ids,
                    "name": [t.name for t in tops] + [leaf.name for leaf in leaves],
                    "level": [0] * len(tops) + [1] * len(leaves),
                    "parent_id": [""] * len(tops) + [self.top_ids[t] for t in leaf_top],
                }
            ),
        )
        self.brand_ids = _ids("b", spec.brands, 2)
        self.brand_names = _brand_names(spec.brands)
        self.write("brands", pd.DataFrame({"id": self.brand_ids, "name": self.brand_names}))
        self.colour_names = [c[0] for c in _COLOURS[: spec.colours]]
        self.colour_rgb = np.array([c[1] for c in _COLOURS[: spec.colours]], dtype=np.float32)

    # -- suppliers and batches ----------------------------------------------------------------

    def suppliers(self) -> None:
        spec = self.spec
        rng = self.rng(1)
        n_sup, n_bat = spec.suppliers, spec.batches
        combos = [f"{p} {s}" for p in _SUPPLIER_PREFIXES for s in _SUPPLIER_SUFFIXES]
        order = rng.permutation(len(combos))
        names = [combos[i] for i in order[:n_sup]]
        names += [f"Supplier {i}" for i in range(len(names), n_sup)]
        countries = rng.integers(0, len(_COUNTRIES), n_sup)
        roles = rng.choice(len(_ROLES), n_sup, p=_ROLE_P)
        self.supplier_ids = _ids("s", n_sup, 2)
        self.write(
            "suppliers",
            pd.DataFrame(
                {
                    "id": self.supplier_ids,
                    "name": names,
                    "country": [_COUNTRIES[i] for i in countries],
                    "roles": [_ROLES[i] for i in roles],
                }
            ),
        )

        # The main stream always draws the clear plan, so that everything drawn after it (the
        # batches' production times and units, hence the products' dates and the users'
        # interactions) is the same for every defect signal; other signals draw their plan
        # from a stream of their own.
        clear = _plan_defects(rng, DEFECT_SIGNALS["clear"], n_sup, n_bat)
        if self.signal == DEFECT_SIGNALS["clear"]:
            bad_sup, batch_sup, batch_bad, rate = clear
        else:
            plan_rng = self.rng(11)
            bad_sup, batch_sup, batch_bad, rate = _plan_defects(plan_rng, self.signal, n_sup, n_bat)
        produced = rng.integers(_START - 60 * _DAY, _END - 150 * _DAY, n_bat)
        units = rng.integers(200, 5_000, n_bat)
        # Batch ids follow production time.
        order = np.argsort(produced, kind="stable")
        self.batch_sup = batch_sup[order]
        self.batch_bad = batch_bad[order]
        self.batch_rate = rate[order]
        self.batch_produced = produced[order].astype(np.int64)
        units = units[order]
        self.batch_ids = _ids("bt", n_bat, 3)
        self.bad_sup = bad_sup
        self.write(
            "batches",
            pd.DataFrame(
                {
                    "id": self.batch_ids,
                    "supplier_id": [self.supplier_ids[s] for s in self.batch_sup],
                    "produced_at": _iso(self.batch_produced),
                    "units": units,
                }
            ),
        )
        sup_rate = np.zeros(n_sup)
        for s in range(n_sup):
            sel = self.batch_sup == s
            sup_rate[s] = float(np.average(self.batch_rate[sel], weights=units[sel]))
        self.gt["defective_batches"] = [self.batch_ids[i] for i in np.flatnonzero(self.batch_bad)]
        self.gt["defective_suppliers"] = [self.supplier_ids[s] for s in bad_sup]
        self.gt["batch_defect_rate"] = {
            b: float(r) for b, r in zip(self.batch_ids, self.batch_rate, strict=True)
        }
        self.gt["supplier_defect_rate"] = {
            s: round(float(r), 4) for s, r in zip(self.supplier_ids, sup_rate, strict=True)
        }

    # -- products -----------------------------------------------------------------------------

    def products(self) -> None:
        spec = self.spec
        rng = self.rng(2)
        n = spec.products
        n_leaves = len(self.leaves)
        self.p_leaf = rng.permutation(np.arange(n) % n_leaves).astype(np.int64)
        self.p_brand = rng.permutation(np.arange(n) % spec.brands).astype(np.int64)
        self.p_colour = rng.integers(0, spec.colours, n).astype(np.int64)
        self.p_level = rng.choice(3, n, p=_PRICE_LEVEL_P).astype(np.int64)
        self.p_batch = rng.permutation(np.arange(n) % spec.batches).astype(np.int64)
        self.p_sup = self.batch_sup[self.p_batch]
        base = np.array([leaf.price for leaf in self.leaves])[self.p_leaf]
        price = base * _PRICE_FACTORS[self.p_level] * rng.lognormal(0.0, 0.12, n)
        self.p_price = np.maximum(np.round(price) - 0.01, 1.99).round(2)
        created = self.batch_produced[self.p_batch] + rng.integers(_DAY, 60 * _DAY, n)
        self.p_created = np.minimum(created, _END - 90 * _DAY).astype(np.int64)
        # Long-tailed popularity: a random rank per product, Zipf-like log weight.
        self.p_pop = -0.9 * np.log1p(rng.permutation(n).astype(np.float64))
        self.product_ids = _ids("p", n, 4)

        raw = rng.integers(0, 1 << 30, (n, 8))
        feats = rng.random((n, 2)) < 0.6
        battery = rng.integers(5, 61, n)
        size_lo = rng.integers(0, 3, n)
        size_hi = rng.integers(3, 6, n)
        self.p_material: list[str] = []
        self.p_features: list[dict[str, bool]] = []
        self.p_sizes: list[list[str]] = []
        self.p_battery: list[int | None] = []
        self.p_short: list[str] = []
        titles, descriptions = [], []
        for i in range(n):
            leaf = self.leaves[self.p_leaf[i]]
            r = raw[i]
            material = _pick(leaf.materials, int(r[0]))
            colour = self.colour_names[self.p_colour[i]]
            brand = self.brand_names[self.p_brand[i]]
            model = _pick(_MODEL_WORDS, int(r[1]))
            features = {f: bool(feats[i, j]) for j, f in enumerate(leaf.features)}
            sizes = list(_APPAREL_SIZES[size_lo[i] : size_hi[i] + 1]) if leaf.sizes else []
            hours = int(battery[i]) if leaf.battery else None
            short = f"{brand} {model} {leaf.noun.title()}"
            title = f"{brand} {model} {_cap(material)} {leaf.noun.title()} - {_cap(colour)}"
            parts = [
                f"{title}.",
                f"A {colour} {material} {leaf.noun} by {brand}.",
            ]
            for f, v in features.items():
                parts.append(f"{_cap(f)}." if v else f"Not {f}.")
            if sizes:
                parts.append(f"Available in sizes {', '.join(sizes)}.")
            if hours is not None:
                parts.append(f"Battery life up to {hours} hours.")
            parts.append(_pick(_TAGLINES, int(r[2])))
            titles.append(title)
            descriptions.append(" ".join(parts))
            self.p_material.append(material)
            self.p_features.append(features)
            self.p_sizes.append(sizes)
            self.p_battery.append(hours)
            self.p_short.append(short)

        self.write(
            "products",
            pd.DataFrame(
                {
                    "id": self.product_ids,
                    "title": titles,
                    "description": descriptions,
                    "price": self.p_price,
                    "currency": "USD",
                    "created_at": _iso(self.p_created),
                    "category_id": [self.leaf_ids[c] for c in self.p_leaf],
                    "brand_id": [self.brand_ids[b] for b in self.p_brand],
                    "supplier_id": [self.supplier_ids[s] for s in self.p_sup],
                    "batch_id": [self.batch_ids[b] for b in self.p_batch],
                    "image_file": [f"images/{p}.png" for p in self.product_ids],
                }
            ),
        )
        self.gt["product_style"] = {
            pid: {
                "category": self.leaf_ids[self.p_leaf[i]],
                "colour": self.colour_names[self.p_colour[i]],
                "brand": self.brand_ids[self.p_brand[i]],
                "price_level": _PRICE_LEVELS[self.p_level[i]],
            }
            for i, pid in enumerate(self.product_ids)
        }
        attributes: dict[str, dict[str, Any]] = {}
        for i, pid in enumerate(self.product_ids):
            entry: dict[str, Any] = {
                "material": self.p_material[i],
                "features": self.p_features[i],
            }
            if self.p_sizes[i]:
                entry["sizes"] = self.p_sizes[i]
            if self.p_battery[i] is not None:
                entry["battery_hours"] = self.p_battery[i]
            attributes[pid] = entry
        self.gt["product_attributes"] = attributes
        self.p_bad_batch = self.batch_bad[self.p_batch]
        self.gt["defective_products"] = [
            self.product_ids[i] for i in np.flatnonzero(self.p_bad_batch)
        ]

    # -- images -------------------------------------------------------------------------------

    def images(self) -> None:
        rng = self.rng(3)
        n = self.spec.products
        masks = _shape_masks(len(self.leaves))
        textures = _textures(self.spec.brands)
        tints = np.array([t.tint for t in self.tops], dtype=np.float32)
        img_dir = self.path / "images"
        shifts = rng.integers(-2, 3, (n, 2))
        jitter = rng.normal(0.0, 12.0, (n, 3)).astype(np.float32)
        has_defect = self.p_bad_batch & (rng.random(n) < self.signal.image_share)
        # Defect kind as a bit mask: 1 scratches, 2 blotches, 4 colour washout.
        kinds = np.where(has_defect, rng.integers(1, 8, n), 0)
        params = rng.integers(4, IMAGE_SIZE - 4, (n, 6, 4))
        side = np.arange(IMAGE_SIZE)
        written: set[str] = set()
        # PNG encoding and file creation release the GIL: save on a few threads. The bytes
        # are fully determined before a task is submitted, so the output stays deterministic.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            pending: list[Future[None]] = []
            for start in range(0, n, 256):
                idx = np.arange(start, min(start + 256, n))
                # Per-image shift of the category mask (like np.roll), gathered in one go.
                ry = (side[None, :] - shifts[idx, 0, None]) % IMAGE_SIZE
                rx = (side[None, :] - shifts[idx, 1, None]) % IMAGE_SIZE
                leaf = self.p_leaf[idx]
                m = masks[leaf[:, None, None], ry[:, :, None], rx[:, None, :]][..., None]
                fill = np.clip(self.colour_rgb[self.p_colour[idx]] + jitter[idx], 0, 255)
                fg = fill[:, None, None, :] * textures[self.p_brand[idx]][..., None]
                bg = tints[self.leaf_top[leaf]][:, None, None, :]
                img = bg + (fg - bg) * m
                wash = (kinds[idx] & 4) != 0
                img[wash] = img[wash] * 0.5 + 0.5 * 235.0
                img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(6.0)
                pixels = np.clip(img, 0, 255).astype(np.uint8)
                for f in pending:
                    f.result()
                pending = []
                for j, i in enumerate(idx):
                    name = f"{self.product_ids[i]}.png"
                    written.add(name)
                    pending.append(
                        pool.submit(
                            _save_image, pixels[j], int(kinds[i]), params[i], img_dir / name
                        )
                    )
            for f in pending:
                f.result()
        # Remove images of an earlier shop written into this directory (ours by name only).
        for old in img_dir.iterdir():
            if old.is_file() and _IMAGE_NAME.match(old.name) and old.name not in written:
                old.unlink()
        self.counts["images"] = n
        names = ("scratches", "blotches", "washout")
        self.gt["image_defects"] = {
            self.product_ids[i]: [name for bit, name in enumerate(names) if kinds[i] >> bit & 1]
            for i in np.flatnonzero(kinds)
        }

    # -- users --------------------------------------------------------------------------------

    def users(self) -> None:
        spec = self.spec
        rng = self.rng(4)
        n = spec.users
        n_leaves = len(self.leaves)
        self.user_ids = _ids("u", n, 4)
        first = rng.integers(0, len(_FIRST_NAMES), n)
        last = rng.integers(0, len(_LAST_NAMES), n)
        age = np.clip(np.round(rng.normal(38, 13, n)), 18, 80).astype(np.int64)
        gender = rng.choice(3, n, p=[0.49, 0.48, 0.03])
        occupation = rng.integers(0, len(_OCCUPATIONS), n)
        location = rng.integers(0, len(_LOCATIONS), n)
        self.write(
            "users",
            pd.DataFrame(
                {
                    "id": self.user_ids,
                    "name": [
                        f"{_FIRST_NAMES[a]} {_LAST_NAMES[b]}"
                        for a, b in zip(first, last, strict=True)
                    ],
                    "age": age,
                    "gender": [("female", "male", "non-binary")[g] for g in gender],
                    "occupation": [_OCCUPATIONS[o] for o in occupation],
                    "location": [_LOCATIONS[loc] for loc in location],
                }
            ),
        )

        def ranked(k_max: int, n_items: int, skew: float) -> IntArray:
            weights = np.log(1.0 + skew * rng.random(n_items))
            keys = weights[None, :] + _gumbel(rng, (n, n_items))
            return np.argsort(-keys, axis=1, kind="stable")[:, :k_max].astype(np.int64)

        cats = ranked(2, n_leaves, 3.0)
        n_cat = rng.integers(1, 3, n)
        cols = ranked(2, spec.colours, 2.0)
        n_col = rng.integers(1, 3, n)
        brands = ranked(2, spec.brands, 2.0)
        n_brand = 1 + (rng.random(n) < 0.25)
        self.u_level = rng.choice(3, n, p=_PRICE_LEVEL_P).astype(np.int64)
        rows = np.arange(n)
        self.u_cat = np.zeros((n, n_leaves), dtype=bool)
        self.u_col = np.zeros((n, spec.colours), dtype=bool)
        self.u_brand = np.zeros((n, spec.brands), dtype=bool)
        self.u_cat[rows, cats[:, 0]] = True
        self.u_cat[rows[n_cat > 1], cats[n_cat > 1, 1]] = True
        self.u_col[rows, cols[:, 0]] = True
        self.u_col[rows[n_col > 1], cols[n_col > 1, 1]] = True
        self.u_brand[rows, brands[:, 0]] = True
        self.u_brand[rows[n_brand > 1], brands[n_brand > 1, 1]] = True
        self.u_primary = cats[:, 0]
        self.gt["user_preferences"] = {
            uid: {
                "categories": [self.leaf_ids[c] for c in cats[u, : n_cat[u]]],
                "colours": [self.colour_names[c] for c in cols[u, : n_col[u]]],
                "brands": [self.brand_ids[b] for b in brands[u, : n_brand[u]]],
                "price_level": _PRICE_LEVELS[self.u_level[u]],
            }
            for u, uid in enumerate(self.user_ids)
        }

    # -- interactions -------------------------------------------------------------------------

    def interactions(self) -> None:
        spec = self.spec
        rng = self.rng(5)
        n_users, n_prod = spec.users, spec.products
        rows_per_view = 1.42
        mean_views = spec.interactions / (n_users * rows_per_view)
        cap = max(3, int(0.8 * n_prod))
        extra = rng.lognormal(0.0, 0.6, n_users)
        extra = extra / extra.mean() * max(mean_views - 3.0, 0.0)
        n_views = np.clip(3 + np.round(extra), 3, cap).astype(np.int64)
        light = rng.random(n_users) < spec.light_user_share
        n_views[light] = rng.integers(1, 3, int(light.sum()))

        users_l, prods_l, aff_l = [], [], []
        # Sampling without replacement proportional to exp(affinity + popularity): the
        # "exponential race" keeps the k largest exp(logit) / Exp(1) per user.
        f32 = np.float32
        cat_w = (2.0 * self.u_cat).astype(f32)
        col_w = (1.0 * self.u_col).astype(f32)
        brand_w = (1.2 * self.u_brand).astype(f32)
        level_pen = (-0.6 * np.abs(np.arange(3)[:, None] - self.p_level[None, :])).astype(f32)
        pop = self.p_pop.astype(f32)
        chunk = max(1, 4_000_000 // n_prod)
        for start in range(0, n_users, chunk):
            sl = slice(start, min(start + chunk, n_users))
            m = sl.stop - sl.start
            aff = cat_w[sl][:, self.p_leaf]
            aff += col_w[sl][:, self.p_colour]
            aff += brand_w[sl][:, self.p_brand]
            aff += level_pen[self.u_level[sl]]
            aff += f32(0.5) * rng.standard_normal((m, n_prod), dtype=f32)
            scores = np.exp(aff + pop[None, :])
            race = rng.standard_exponential((m, n_prod), dtype=f32)
            scores /= np.maximum(race, f32(1e-30))
            r, c = _top_k_rows(scores, n_views[sl])
            users_l.append(r + sl.start)
            prods_l.append(c)
            aff_l.append(aff[r, c].astype(np.float64))
        u = np.concatenate(users_l)
        p = np.concatenate(prods_l)
        a = np.concatenate(aff_l)
        n_rows = len(u)

        # Purchases and favourites follow the affinity; the threshold is calibrated so that
        # the expected number of rows meets the preset's target.
        can_fav = ~light[u]
        target = float(spec.interactions)

        def expected_rows(c: float) -> float:
            p_buy = _sigmoid(1.3 * (a - c))
            p_fav = _sigmoid(1.3 * (a - c - 0.7)) * can_fav
            return float(n_rows + p_buy.sum() + p_fav.sum())

        lo, hi = 0.5, 4.5
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if expected_rows(mid) > target else (lo, mid)
        thr = 0.5 * (lo + hi)
        events = _draw_events(
            rng, u, p, a, thr, can_fav, self.p_created[p], self.user_ids, self.product_ids
        )
        self.write("interactions", events.frame)
        buy, buy_ts = events.buy, events.buy_ts
        self.buy_u, self.buy_p, self.buy_ts, self.buy_aff = u[buy], p[buy], buy_ts[buy], a[buy]
        self.view_u, self.view_p = u, p

    # -- reviews ------------------------------------------------------------------------------

    def reviews(self) -> None:
        spec = self.spec
        rng = self.rng(6)
        n_buy = len(self.buy_u)
        n_rev = min(spec.reviews, n_buy)
        chosen = np.sort(rng.choice(n_buy, n_rev, replace=False))
        ru, rp = self.buy_u[chosen], self.buy_p[chosen]
        # Which reviewed items are defective, and which reviews complain: per batch, a
        # stochastically rounded share (stratified, so even tiny shops follow the hidden rates).
        # Noise both ways: some defective items are reviewed positively, some good ones not.
        sig = self.signal
        rb = self.p_batch[rp]
        every = np.ones(n_rev, dtype=bool)
        bad = _stratified(rng, rb, spec.batches, self.batch_rate, every)
        complaint = _stratified(rng, rb, spec.batches, np.full(spec.batches, sig.report), bad)
        false = np.full(spec.batches, sig.false_report)
        complaint |= _stratified(rng, rb, spec.batches, false, ~bad)
        aff = self.buy_aff[chosen]
        pts = self.buy_ts[chosen]

        # Guarantee an "at-risk" product: in a defective batch of a defective supplier and
        # without any complaint yet.
        bad_sup_products = np.flatnonzero(self.p_bad_batch & np.isin(self.p_sup, self.bad_sup))
        complained = np.zeros(spec.products, dtype=np.int64)
        np.add.at(complained, rp[complaint], 1)
        if bad_sup_products.size and (complained[bad_sup_products] > 0).all():
            target = bad_sup_products[np.argmin(complained[bad_sup_products])]
            complaint[rp == target] = False

        delay = rng.uniform(2 * _DAY, 40 * _DAY, n_rev)
        ts = pts + np.minimum(delay, (_END - pts) * rng.random(n_rev)).astype(np.int64)
        good_r = np.clip(np.round(3.7 + 0.35 * aff + rng.normal(0.0, 0.8, n_rev)), 1, 5)
        bad_r = rng.choice(np.arange(1, 6), n_rev, p=sig.complaint_ratings)
        rating = np.where(complaint, bad_r, good_r).astype(np.int64)
        verified = rng.random(n_rev) < 0.92
        helpful = rng.poisson(0.8 + 1.5 * complaint)
        raw = rng.integers(0, 1 << 30, (n_rev, 10))
        if sig.service_low[1] > 0:
            # Low ratings that report no defect (delivery, price, fit), at a supplier's rate.
            service = rng.uniform(*sig.service_low, spec.suppliers)
            low = ~complaint & (rng.random(n_rev) < service[self.p_sup[rp]])
            rating[low] = rng.choice([1, 2], n_rev, p=[0.4, 0.6])[low]

        order = np.lexsort((rp, ru, ts))
        self.review_ids = _ids("r", n_rev, 5)
        titles, texts = [], []
        complaint_ids = []
        for k, i in enumerate(order):
            t, x = self._review_text(int(rp[i]), int(rating[i]), bool(complaint[i]), raw[i])
            titles.append(t)
            texts.append(x)
            if complaint[i]:
                complaint_ids.append(self.review_ids[k])
        self.write(
            "reviews",
            pd.DataFrame(
                {
                    "id": self.review_ids,
                    "user_id": np.array(self.user_ids)[ru[order]],
                    "product_id": np.array(self.product_ids)[rp[order]],
                    "title": titles,
                    "text": texts,
                    "rating": rating[order],
                    "ts": _iso(ts[order]),
                    "verified": verified[order],
                    "helpful": helpful[order],
                }
            ),
        )
        self.gt["complaint_reviews"] = complaint_ids
        complained = np.zeros(spec.products, dtype=np.int64)
        np.add.at(complained, rp[complaint], 1)
        at_risk = np.flatnonzero(self.p_bad_batch & (complained == 0))
        self.gt["at_risk_products"] = [self.product_ids[i] for i in at_risk]

    def _review_text(
        self, p: int, rating: int, complaint: bool, r: NDArray[np.int64]
    ) -> tuple[str, str]:
        leaf = self.leaves[self.p_leaf[p]]
        slots = {
            "noun": leaf.noun,
            "colour": self.colour_names[self.p_colour[p]],
            "brand": self.brand_names[self.p_brand[p]],
            "material": self.p_material[p],
            "category": leaf.name.lower(),
            "when": _pick(_WHEN, int(r[0])),
            "relation": _pick(_RELATIONS, int(r[1])),
            "duration": _pick(_DURATIONS, int(r[2])),
            "shade": _pick(_SHADES, int(r[3])),
            "feel": _pick(_FEELS, int(r[4])),
        }
        parts = [_pick(_OPENERS, int(r[5])).format(**slots)]
        if int(r[6]) % 5 != 0:
            parts.append(_pick(_ATTRIBUTE_LINES, int(r[7])).format(**slots))
        if complaint:
            group = self.tops[self.leaf_top[self.p_leaf[p]]].group
            pool = _COMPLAINTS[group] + _COMPLAINTS_GENERIC
            c = _pick(pool, int(r[8]))
            wrap = _pick(_COMPLAINT_WRAPS, int(r[9]))
            parts.append(wrap.format(c=c, C=_cap(c)))
            if int(r[6]) % 3 != 0:
                parts.append(_pick(_COMPLAINT_CLOSERS, int(r[8]) >> 4).format(**slots))
            title = _pick(_TITLES_COMPLAINT, int(r[9]) >> 4)
        elif rating >= 4:
            parts.append(_pick(_PRAISE, int(r[8])))
            title = _pick(_TITLES_GOOD, int(r[9]))
        elif rating == 3:
            parts.append(_pick(_NEUTRAL, int(r[8])))
            title = _pick(_TITLES_NEUTRAL, int(r[9]))
        else:
            parts.append(_pick(_MEH, int(r[8])).format(**slots))
            title = _pick(_TITLES_BAD, int(r[9]))
        return title.format(**slots), " ".join(parts)

    # -- questions and answers ----------------------------------------------------------------

    def questions(self) -> None:
        spec = self.spec
        rng = self.rng(7)
        n_q = spec.questions
        weights = np.exp(0.5 * self.p_pop)
        qp = rng.choice(spec.products, n_q, p=weights / weights.sum())
        qts = self.p_created[qp] + (rng.random(n_q) * (_END - self.p_created[qp] - _DAY)).astype(
            np.int64
        )
        order = np.lexsort((qp, qts))
        qp, qts = qp[order], qts[order]
        raw = rng.integers(0, 1 << 30, (n_q, 6))
        second = rng.random(n_q) < 0.1
        self.question_ids = _ids("q", n_q, 4)
        q_text, q_type = [], []
        answers: list[tuple[int, str, str]] = []  # (question index, text, atype)
        for k in range(n_q):
            q, qt, a, at = self._question(int(qp[k]), raw[k])
            q_text.append(q)
            q_type.append(qt)
            answers.append((k, a, at))
            if second[k]:
                noun = self.leaves[self.p_leaf[qp[k]]].noun
                answers.append((k, f"I own this {noun}. {a}", at))
        n_a = len(answers)
        a_q = np.array([a[0] for a in answers], dtype=np.int64)
        a_ts = np.minimum(qts[a_q] + rng.exponential(1.5 * _DAY, n_a).astype(np.int64), _END)
        answer_ids = _ids("a", n_a, 4)
        self.write(
            "questions",
            pd.DataFrame(
                {
                    "id": self.question_ids,
                    "product_id": np.array(self.product_ids)[qp],
                    "text": q_text,
                    "qtype": q_type,
                    "ts": _iso(qts),
                }
            ),
        )
        self.write(
            "answers",
            pd.DataFrame(
                {
                    "id": answer_ids,
                    "question_id": [self.question_ids[i] for i in a_q],
                    "text": [a[1] for a in answers],
                    "atype": [a[2] for a in answers],
                    "ts": _iso(a_ts),
                }
            ),
        )
        gt: dict[str, list[str]] = {qid: [] for qid in self.question_ids}
        for aid, (k, _, _) in zip(answer_ids, answers, strict=True):
            gt[self.question_ids[k]].append(aid)
        self.gt["answers"] = gt

    def _question(self, p: int, r: NDArray[np.int64]) -> tuple[str, str, str, str]:
        """One question about product ``p``: (question, qtype, answer, atype)."""
        leaf = self.leaves[self.p_leaf[p]]
        colour = self.colour_names[self.p_colour[p]]
        brand = self.brand_names[self.p_brand[p]]
        material = self.p_material[p]
        noun, short = leaf.noun, self.p_short[p]
        kinds = ["colour", "colour_yn", "feature", "feature", "material", "brand"]
        if leaf.sizes:
            kinds += ["size", "size"]
        if leaf.battery:
            kinds += ["battery", "battery"]
        kind = _pick(kinds, int(r[0]))
        v = int(r[1])
        if kind == "colour":
            q = _pick(
                (
                    f"What colour is the {short}?",
                    f"What is the exact colour of this {noun}?",
                    f"Which colour is the {noun} in the photos?",
                ),
                v,
            )
            a = _pick((f"It is {colour}.", f"The {short} is {colour}."), v >> 3)
            return q, "open", a, "open"
        if kind == "colour_yn":
            yes = int(r[2]) % 2 == 0 or len(self.colour_names) < 2
            others = [c for c in self.colour_names if c != colour]
            asked = colour if yes else _pick(others, int(r[3]))
            q = _pick(
                (
                    f"Does this {noun} come in {asked}?",
                    f"Is this {noun} available in {asked}?",
                    f"Is the {short} {asked}?",
                ),
                v,
            )
            if yes:
                return q, "yes/no", f"Yes, the {brand} {noun} is {colour}.", "yes"
            return q, "yes/no", f"No, the {brand} {noun} only comes in {colour}.", "no"
        if kind == "feature":
            feature = _pick(leaf.features, int(r[2]))
            has = self.p_features[p][feature]
            q = _pick(
                (
                    f"Is this {noun} {feature}?",
                    f"Is the {short} {feature}?",
                    f"Can you tell me if this {noun} is {feature}?",
                ),
                v,
            )
            if has:
                return (
                    q,
                    "yes/no",
                    f"Yes, the {brand} {colour} {material} {noun} is {feature}.",
                    "yes",
                )
            return q, "yes/no", f"No, the {brand} {colour} {noun} is not {feature}.", "no"
        if kind == "material":
            q = _pick((f"What is this {noun} made of?", f"What material is the {short}?"), v)
            a = _pick((f"The {short} is made of {material}.", f"It is made of {material}."), v >> 3)
            return q, "open", a, "open"
        if kind == "size":
            sizes = self.p_sizes[p]
            asked = _pick(_APPAREL_SIZES, int(r[2]))
            q = _pick(
                (f"Does it come in size {asked}?", f"Is the {short} available in size {asked}?"), v
            )
            if asked in sizes:
                return q, "yes/no", f"Yes, the {short} is available in size {asked}.", "yes"
            return (
                q,
                "yes/no",
                f"No, the {short} only comes in sizes {sizes[0]} to {sizes[-1]}.",
                "no",
            )
        if kind == "battery":
            hours = self.p_battery[p]
            q = _pick(
                ("How long does the battery last?", f"What is the battery life of the {short}?"), v
            )
            return q, "open", f"The battery of the {short} lasts about {hours} hours.", "open"
        q = _pick((f"Who makes this {noun}?", f"Which brand is this {colour} {noun} from?"), v)
        return q, "open", f"It is made by {brand}.", "open"

    # -- follows ------------------------------------------------------------------------------

    def follows(self) -> None:
        spec = self.spec
        rng = self.rng(8)
        n = spec.users
        n_f = np.minimum(rng.poisson(spec.follows_per_user, n), n - 1)
        src = np.repeat(np.arange(n), n_f)
        total = len(src)
        order = np.argsort(self.u_primary, kind="stable")
        sorted_cat = self.u_primary[order]
        cats = np.arange(len(self.leaves))
        lo = np.searchsorted(sorted_cat, cats, "left")[self.u_primary[src]]
        hi = np.searchsorted(sorted_cat, cats, "right")[self.u_primary[src]]
        same_taste = order[lo + (rng.random(total) * (hi - lo)).astype(np.int64)]
        anyone = rng.integers(0, n, total)
        dst = np.where(rng.random(total) < 0.7, same_taste, anyone)
        ts = rng.integers(_START, _END, total)
        keep = dst != src
        key = src[keep].astype(np.int64) * n + dst[keep]
        key, first = np.unique(key, return_index=True)
        ts = ts[keep][first]
        ids = np.array(self.user_ids)
        self.write(
            "follows",
            pd.DataFrame({"user_id": ids[key // n], "followee_id": ids[key % n], "ts": _iso(ts)}),
        )

    # -- ground truth -------------------------------------------------------------------------

    def ground_truth(self) -> None:
        keys = (
            "seed",
            "size",
            "defective_batches",
            "defective_suppliers",
            "batch_defect_rate",
            "supplier_defect_rate",
            "product_style",
            "user_preferences",
            "answers",
            "defective_products",
            "at_risk_products",
            "complaint_reviews",
            "image_defects",
            "product_attributes",
        )
        _write_json(self.path / "ground_truth.json", {k: self.gt[k] for k in keys})
