"""driftwatch: drift monitoring that retrains and promotes a model only when it helps.

The package imports nothing heavy at the top level, so ``driftwatch --help`` stays instant;
Prefect, MLflow and Evidently are imported inside the few modules that talk to them.
"""

__version__ = "0.1.0"
