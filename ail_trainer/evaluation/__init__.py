"""Evaluation: judges that did not select (fluency under another model, a neural toxicity classifier) and the
temperature-curve control."""

from .fluency import FluencyJudge
from .toxblock import ToxBlockJudge

__all__ = ["FluencyJudge", "ToxBlockJudge"]
