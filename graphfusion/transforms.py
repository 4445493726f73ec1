"""Named transforms that a loader mapping's fields apply to source values.

Each transform takes the value and the field's options (``sep``, ``prefix``, ``index``,
``regex``) and returns the new value; one that raises ValueError rejects the row with that
reason. Mappings name them in ``transform:`` (see :mod:`graphfusion.mapping`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from graphfusion.values import ascii_forms, is_missing, number_text, require_scalar

__all__ = ["TRANSFORMS", "as_text"]


def _each_text(v: Any, f: Callable[[str], Any]) -> Any:
    """``f`` of a text, or of each text in a list (other values are kept as they are)."""
    if isinstance(v, str):
        return f(v)
    if isinstance(v, (list, tuple)):
        return [f(x) if isinstance(x, str) else x for x in v]
    return v


def _strip(v: Any, o: Mapping[str, Any]) -> Any:
    """The text without spaces at its ends; a list gives each element's."""
    return _each_text(v, str.strip)


def _lower(v: Any, o: Mapping[str, Any]) -> Any:
    """The text in lower case; a list gives each element's."""
    return _each_text(v, str.lower)


def _join(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return str(o.get("sep", " ")).join(str(x).strip() for x in v if not is_missing(x))
    return v


def _first(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return next((x for x in v if not is_missing(x)), None)
    return v


def _last(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return next((x for x in reversed(v) if not is_missing(x)), None)
    return v


def _split(v: Any, o: Mapping[str, Any]) -> Any:
    """The non-empty parts of a text split by ``sep`` (``;``), stripped; with ``regex: true``
    ``sep`` is a regular expression (what its groups capture is no part)."""
    if isinstance(v, str):
        sep = o.get("sep", ";")
        if o.get("regex"):
            parts, start = [], 0
            for m in re.finditer(sep, v):
                parts.append(v[start : m.start()])
                start = m.end()
            parts.append(v[start:])
        else:
            parts = v.split(sep)
        return [p.strip() for p in parts if p.strip()]
    return v


def _unix_s(v: Any, o: Mapping[str, Any]) -> Any:
    if is_missing(v):
        return None
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a Unix time")
    try:
        secs = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{str(v)[:40]!r} is not a Unix time") from None
    if not math.isfinite(secs) or not 0 <= secs < 1e11:
        raise ValueError(f"{v!r} is not a Unix time in seconds")
    return dt.datetime.fromtimestamp(secs, tz=dt.UTC).replace(tzinfo=None)


def _unix_ms(v: Any, o: Mapping[str, Any]) -> Any:
    if is_missing(v):
        return None
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a Unix time in milliseconds")
    try:
        return _unix_s(float(v) / 1000.0, o)
    except (TypeError, ValueError):
        raise ValueError(f"{str(v)[:40]!r} is not a Unix time in milliseconds") from None


# The first number in a text: digits with maybe commas and a decimal part (or a decimal part
# alone, ".5", where no letter, digit or dot comes before it), maybe an exponent ("1.5e-3"),
# maybe after a currency sign, and maybe after a minus sign (- or the Unicode minus) that
# starts the number: one at the start of the text or after a space, an opening bracket, a
# colon, an equals sign or a currency sign, not after a letter or a digit (the hyphen of
# "Model X-5" or "2-pack"). Group 4 is a decimal comma right after the number ("1.234,56").
_NUMBER = re.compile(
    r"((?<![^\s(\[{:=$€£¥₹])[-\u2212])?\s*[$€£¥₹]?\s*"
    r"((?<![\w.])\.\d+|\d(?:[\d,]*\d)?(?:\.\d+)?)([eE][-+]?\d+)?(,\d)?"
)


def _number(v: Any, o: Mapping[str, Any]) -> Any:
    """The first number in a text such as ``"$1,299.00"``, ``"-$5.00"``, ``".5"`` or
    ``"1.5e-3"`` (None when there is none, as in an empty or a placeholder price); a list
    gives each element's (a list left in a number property rejects its row there).

    A minus sign makes the number negative only where it starts it: at the start of the text
    or after a space, an opening bracket, a colon, an equals sign or a currency sign (``"-5"``,
    ``"$ -3.5"``, ``"(-2)"``, ``"Temp:-5"``, ``"x=-3"``, ``"$-4"``); a hyphen after a letter
    or a digit is not one (``"Model X-5"`` gives 5.0).

    Raises:
        ValueError: The number has commas that are not thousands separators (``"1,99"``,
            ``"1.234,56"``), or the value is a mapping (a JSON object).
    """
    if isinstance(v, (list, tuple)):
        return [_number(x, o) for x in v]
    if isinstance(v, Mapping):
        raise ValueError(f"{str(v)[:40]!r} is not a number: a mapping")
    if is_missing(v) or isinstance(v, (int, float)):
        return v
    m = _NUMBER.search(ascii_forms(str(v)))
    if m is None:
        return None
    if m.group(4):  # "1.234,56": a decimal comma, not a thousands separator
        raise ValueError(
            f"{str(v)[:40]!r} is not a number: a comma is read only as a thousands separator "
            "(1,234.5)"
        )
    sign = "-" if m.group(1) else ""
    return float(sign + number_text(m.group(2)) + (m.group(3) or ""))


# A tag or a comment: "<" right before a name, "/", "!" or "?" (so "< 2 kg" is text).
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")


def _strip_html(v: Any, o: Mapping[str, Any]) -> Any:
    """The text without HTML tags and comments, entities decoded, runs of spaces made one; a
    list gives each element's. A ``<`` that starts no tag (``"< 2 kg"``) is text."""
    return _each_text(v, lambda t: re.sub(r"\s+", " ", html.unescape(_TAG.sub(" ", t))).strip())


def _key_text(v: Any, sep: str, fold: bool = False) -> Any:
    """The lowercase letters and digits of a text, each run of other characters replaced by
    ``sep``; None when nothing is left; a list gives each element's. Without ``fold`` only
    ASCII letters and digits count; with it accents are dropped and the letters and digits of
    every script count."""
    if isinstance(v, list):
        return [_key_text(x, sep, fold) for x in v]
    if not isinstance(v, str):
        return v
    if fold:  # accents dropped; letters of other scripts kept (a Japanese firm's name)
        v = "".join(c for c in unicodedata.normalize("NFKD", v) if not unicodedata.combining(c))
        return re.sub(r"[\W_]+", sep, v.lower()).strip(sep) or None
    return re.sub(r"[^a-z0-9]+", sep, v.lower()).strip(sep) or None


def _slug(v: Any, o: Mapping[str, Any]) -> Any:
    return _key_text(v, "-")


def _firm_key(v: Any, o: Mapping[str, Any]) -> Any:
    """The key of a firm's name: its letters and digits, lowercased, accents dropped, so that
    spellings that differ only in spaces and punctuation are one firm: ``"Wal-Mart"`` and
    ``"Walmart"`` give ``"walmart"``, ``"J.C. Penney"`` and ``"JCPenney"`` ``"jcpenney"``,
    ``"Lowe's"`` ``"lowes"``. None when nothing is left; a list gives the key of each name."""
    return _key_text(v, "", fold=True)


def as_text(v: Any) -> str:
    """A value as key text: an integral float (an id column with gaps) loses its ``.0``.

    Raises:
        ValueError: ``v`` is a list, dict or other container, or a boolean.
    """
    require_scalar(v, "a value put into text")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _prefix(v: Any, o: Mapping[str, Any]) -> Any:
    pre = str(o.get("prefix", ""))
    if isinstance(v, list):
        return [pre + as_text(x) for x in v if not is_missing(x)]
    return None if is_missing(v) else pre + as_text(v)


def _stem(v: Any, o: Mapping[str, Any]) -> Any:
    """The file name of a path without its (last) extension; a list gives each element's."""
    if isinstance(v, (list, tuple)):
        return [Path(as_text(x)).stem for x in v if not is_missing(x)]
    return Path(as_text(v)).stem if not is_missing(v) else v


def _upper_first(v: Any, o: Mapping[str, Any]) -> Any:
    """The text with its first letter in upper case; a list gives each element's."""
    return _each_text(v, lambda t: t[:1].upper() + t[1:])


def _nonempty_list(v: Any, o: Mapping[str, Any]) -> Any:
    if isinstance(v, (list, tuple)):
        return [x for x in v if not is_missing(x)] or None
    return v


def _field_of(v: Any, o: Mapping[str, Any]) -> Any:
    """Part ``index`` (0-based) of a text split by ``sep``."""
    if not isinstance(v, str):
        return v
    parts = [p.strip() for p in v.split(str(o.get("sep", "-")))]
    idx = int(o.get("index", 0))
    return parts[idx] if -len(parts) <= idx < len(parts) and parts[idx] else None


def _digest(v: Any, o: Mapping[str, Any]) -> Any:
    """A short stable id for a value: the first 16 hex digits of the SHA-1 of its text (see
    :func:`as_text`: ``5``, ``5.0`` and ``"5"`` give the same id).

    Raises:
        ValueError: The value is a list, a mapping or a boolean.
    """
    if is_missing(v):
        return None
    return hashlib.sha1(as_text(v).encode("utf-8")).hexdigest()[:16]


def _item(v: Any, o: Mapping[str, Any]) -> Any:
    """Element ``index`` (0-based) of a list; None when the list is shorter."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        return v
    items = [x for x in v if not is_missing(x)]
    idx = int(o.get("index", 0))
    return items[idx] if -len(items) <= idx < len(items) else None


def _head(v: Any, o: Mapping[str, Any]) -> Any:
    """The first ``index`` elements of a list, or parts of a text split by ``sep`` (joined again
    by ``sep``): a path of that many levels. None when there are fewer."""
    n = int(o.get("index", 1))
    if isinstance(v, str):
        sep = str(o.get("sep", "-"))
        parts = [p.strip() for p in v.split(sep) if p.strip()]
        return sep.join(parts[:n]) if len(parts) >= n else None
    if isinstance(v, (list, tuple)):
        items = [x for x in v if not is_missing(x)]
        return items[:n] if len(items) >= n else None
    return v


_TRUE_FLAGS = {"1", "1.0", "true", "t", "yes", "y"}


def _flags(v: Any, o: Mapping[str, Any]) -> Any:
    """The names whose flag is set in a text of ``name=value`` pairs split by ``sep`` (``,``),
    e.g. a template over 0/1 columns such as ``"Action={Action},Drama={Drama}"``."""
    if not isinstance(v, str):
        return v
    names = []
    for pair in v.split(str(o.get("sep", ","))):
        name, _, flag = pair.rpartition("=")
        if name.strip() and flag.strip().lower() in _TRUE_FLAGS:
            names.append(name.strip())
    return names or None


def _lead(v: Any, o: Mapping[str, Any]) -> Any:
    """The text before the first match of the regular expression ``sep``, or its first word
    when there is no match (a brand at the start of a title, up to a word such as "Men")."""
    if not isinstance(v, str):
        return v
    text = re.sub(r"\s+", " ", v).strip()
    m = re.search(str(o.get("sep", r"\s")), text)
    head = text[: m.start()].strip() if m else ""
    return head or (text.split(" ", 1)[0] if text else None)


def _plain_text(v: str) -> str:
    text = html.unescape(html.unescape(v)).replace("\u2019", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


# US, British, German ("GmbH & Co. KG"), French, Spanish and Mexican ("S.A. de C.V."),
# Italian, Dutch, Nordic and Australian legal forms; longer spellings first
_LEGAL_FORM = (
    r"(?:Inc|Incorporated|Co|Corp|Corporation|Company|Ltd|Limited|LLC|L\.L\.C|LP|L\.P|GmbH|AG|"
    r"KG|S\.?A\.? de C\.?V|S\.A\.S|SAS|SARL|S\.A|SA|S\.p\.A|S\.r\.l|Srl|PLC|N\.V|B\.V|Pty|"
    r"Oy|AB|A/S)"
)
_COMPANY_SPLIT = re.compile(r";\s*(?:and\s+)?|,\s+and\s+(?=[A-Z])")
# "A Inc. and B Corp.": a legal form ends a firm before "and" or "&" (not "Crate and Barrel"),
# unless another legal form follows ("GmbH & Co. KG" is one)
_COMPANY_JOINED = re.compile(
    rf"(\b{_LEGAL_FORM}\b\.?),?\s+(?:and|&)\s+(?=[A-Z])(?!{_LEGAL_FORM}\b)"
)
_COMPANY_LABEL = re.compile(r"^[A-Z][A-Za-z ]{0,30}:\s*")
_COMPANY_ADDRESS_AFTER_FORM = re.compile(
    rf"^(.+?\b{_LEGAL_FORM}\b\.?)(?:,?\s+{_LEGAL_FORM}\b\.?)*,\s", re.I
)
_COMPANY_FORM_OF = re.compile(rf"^(.+?\b{_LEGAL_FORM}\b\.?)\s+of\s", re.I)
_COMPANY_TAIL = re.compile(
    r",\s+(?:a|an|now|owner|until|previously)\s|,?\s+(?:dba|d/b/a|on behalf)\b|\s+\(", re.I
)
_LEGAL_TAIL = re.compile(rf"(?:,?\s+(?:(?:and|&)\s+)?{_LEGAL_FORM}\b\.?)+$", re.I)
_LEGAL_ONLY = re.compile(rf"^(?:{_LEGAL_FORM}\b\.?[\s,&]*)+$", re.I)
_SENTENCE_VERB = re.compile(r"\b(?:was|were|is|are|has|have|had)\b")


def _company_name(part: str) -> str | None:
    part = _COMPANY_LABEL.sub("", part.strip(' "'))
    if ", of " in part:
        part = part.split(", of ", 1)[0]
        m = _COMPANY_FORM_OF.match(part)
        part = m.group(1) if m else part
    elif " of " in part:
        part = part.split(" of ", 1)[0]
    else:
        m = _COMPANY_ADDRESS_AFTER_FORM.match(part)
        part = m.group(1) if m else part
    part = _COMPANY_TAIL.split(part, 1)[0].strip(' ,;."')
    name = _LEGAL_TAIL.sub("", part).strip(' ,;."') or part
    name = re.sub(r"^The\s+", "", name)
    if not name or _SENTENCE_VERB.search(name) or _LEGAL_ONLY.match(name):
        return None
    return name


def _companies(v: Any, o: Mapping[str, Any]) -> Any:
    """Company names in a field naming one or more firms with their addresses, as in CPSC
    recalls: ``"Secop GmbH, of Germany; and True Manufacturing Co. Inc., of O'Fallon, Missouri"``
    gives ``["Secop", "True Manufacturing"]``. Firms are split at ``;``, ``, and`` and at
    ``and`` or ``&`` after a legal form (``"Acme Inc. and Beta Corp."``); the
    address (``, of ...``), ``d/b/a`` and ``a division of`` tails, legal forms (Inc., Corp.,
    LLC, GmbH & Co. KG, S.A. de C.V., SAS, AB, Pty Ltd...) and a leading "The" are dropped, so
    spellings of one firm share a slug; a legal form alone names no firm."""
    if not isinstance(v, str):
        return v
    names: list[str] = []
    for part in _COMPANY_SPLIT.split(_COMPANY_JOINED.sub(r"\1; ", _plain_text(v))):
        name = _company_name(part)
        if name and name not in names:
            names.append(name)
    return names or None


# "Sold at" prose: where a list of retailer names ends, and the phrases that start one.
_SALE_END = re.compile(
    r"\b(?:from|between|for|sold|in|on|online|through|via|who|to|with|as well as|beginning|"
    r"during|since|under|at|by|nationwide|and other|other)\b|(?<=[a-z0-9]{2})\.(?:\s|$)|[();:]",
    re.I,
)
_SALE_INTRO = re.compile(
    r"\b(?:including|such as|exclusively at|exclusively through|sold at|sold by)\s+", re.I
)
_SALE_GENERIC = re.compile(
    r"\s*\b(?:stores?|outlets?|retailers?|catalogs?|websites?|locations?|dealers?|"
    r"distributors?)$",
    re.I,
)
_NAME_SMALL_WORDS = {"of", "and", "&", "la", "le", "de", "du", "des", "the", "n", "'n", "by"}
_NOT_RETAILERS = {
    "department", "departments", "appliance", "appliances", "online", "internet", "retail",
    "directly", "distributors", "exclusively", "through", "major", "independent", "specialty",
    "home", "discount", "mass", "drug", "club", "gourmet", "toy", "sporting", "plumbers",
    "kitchen", "kitchens", "television", "approximately", "grocery", "fast-food", "original",
    "coffee", "bottled", "boat", "gas", "outdoor", "model", "given", "the", "there", "these",
    "this", "national", "various", "dealers", "hardware", "electronics", "warehouse", "catalog",
    "catalogs", "mail", "drugstores", "supermarkets", "convenience", "commercial", "authorized",
    "builders", "homebuilders", "restaurants", "hotel", "military", "midwest", "web",
    "websites", "retailers", "stores", "us", "u.s.", "usa", "canada", "co", "inc", "studio",
}  # fmt: skip
_MONTH = re.compile(
    r"^(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\b"
)


def _retailer_names(segment: str) -> list[str]:
    m = _SALE_END.search(segment)
    segment = segment[: m.start()] if m else segment
    names = []
    for piece in re.split(r",|\band\b|/", segment):
        piece = piece.strip(" .'\"")
        while (shorter := _SALE_GENERIC.sub("", piece).strip(" ,")) != piece:
            piece = shorter
        words = piece.split()
        if not words or len(words) > 5:
            continue
        if any(w[0].islower() and w.lower() not in _NAME_SMALL_WORDS for w in words):
            continue  # a description ("home appliance stores"), not a name
        if piece.lower() in _NOT_RETAILERS or (
            len(words) == 1 and words[0].lower() in _NOT_RETAILERS
        ):
            continue
        if _MONTH.match(piece) or any(w.isdigit() for w in words) or "$" in piece:
            continue
        if re.search(r"\.(?:com|net|org|us|ca)\b|^www\.", piece, re.I):
            continue  # web sites are not named as retailers
        piece = re.sub(r"^The\s+", "", _LEGAL_TAIL.sub("", piece))
        if piece:
            names.append(piece)
    return names


def _retailers(v: Any, o: Mapping[str, Any]) -> Any:
    """Store names in a "sold at" sentence, as in CPSC recalls: ``"Best Buy, Costco, The Home
    Depot and other stores nationwide and online at LG.com from 2015 ..."`` gives ``["Best Buy",
    "Costco", "Home Depot"]``. Names are taken from the start of the sentence and after
    "including" or "such as", up to words such as "from", "nationwide" or "online"; pieces that
    are not capitalised names (``"home appliance stores"``), dates, prices and web sites are
    dropped. A heuristic: a name with "and" in it ("Crate and Barrel") is split."""
    if not isinstance(v, str):
        return v
    text = _plain_text(v)
    names: list[str] = []
    for segment in [text, *(text[m.end() :] for m in _SALE_INTRO.finditer(text))]:
        for name in _retailer_names(segment):
            if name not in names:
                names.append(name)
    return names or None


#: Named transforms a mapping field can apply, in order. Each takes the value and the field's
#: options; a transform raising ValueError rejects the row with that reason.
TRANSFORMS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "strip": _strip,
    "lower": _lower,
    "join": _join,
    "first": _first,
    "last": _last,
    "split": _split,
    "unix_s": _unix_s,
    "unix_ms": _unix_ms,
    "number": _number,
    "strip_html": _strip_html,
    "slug": _slug,
    "firm_key": _firm_key,
    "prefix": _prefix,
    "stem": _stem,
    "capitalize": _upper_first,
    "compact": _nonempty_list,
    "part": _field_of,
    "digest": _digest,
    "item": _item,
    "head": _head,
    "flags": _flags,
    "lead": _lead,
    "companies": _companies,
    "retailers": _retailers,
}
