"""Profile models or text sets with the paper's protocols (same as the `ail-profile` console script).

    python recipes/ail_profile.py compare --models base/ tuned/ --output-dir profile/ --toxicity-backend profanity
    python recipes/ail_profile.py inheritance --before base/ --after tuned/ --source data.jsonl --output-dir inherit/
"""

from ail_trainer.profiling.cli import main

if __name__ == "__main__":
    main()
