"""Evaluation: judges that did not select (fluency under another model, a neural toxicity classifier) and the
temperature-curve control."""

from .fluency import FluencyJudge
from .toxblock import ToxBlockJudge

__all__ = ["FluencyJudge", "ToxBlockJudge", "build_judges"]


def build_judges(specs: list[str]) -> dict:
    """Judges by name, as scorers `(prompts, texts) -> values`: 'fluency' (Gemma 3 270M's NLL, keyed `judge_nll`),
    'fluency=<model>' (another causal LM) and 'toxblock' (ToxBlock's `toxic` probability, keyed `toxblock`)."""
    judges = {}
    for spec in specs:
        name, _, model = spec.partition("=")
        if name == "fluency":
            judges["judge_nll"] = FluencyJudge(model) if model else FluencyJudge()
        elif name == "toxblock" and not model:
            tox = ToxBlockJudge()
            judges["toxblock"] = lambda prompts, texts, tox=tox: tox(texts)
        else:
            raise ValueError(f"Unknown judge {spec!r}; the judges are 'fluency', 'fluency=<causal LM path or id>' "
                             "and 'toxblock'.")
    return judges
