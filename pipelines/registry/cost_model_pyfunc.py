"""The registered cost model as an MLflow pyfunc (logged as code: MLflow runs this file when it
loads the model, with the ``models`` and ``validation`` packages on ``sys.path`` from the model's
``code`` folder, and the bundle folder as the artifact ``bundle``).

``predict`` takes raw rows of parent order + point-in-time market state
(:data:`models.cost_bundle.SERVING_INPUTS`) and returns
:data:`models.cost_bundle.SERVING_OUTPUTS`; the features are built inside by the training code.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.cost_bundle import CostModelBundle


class CostModelPyfunc(PythonModel):
    """``CostModelBundle.predict_raw`` behind MLflow's pyfunc interface."""

    def load_context(self, context) -> None:
        self.bundle = CostModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.bundle.predict_raw(pd.DataFrame(model_input))


mlflow.models.set_model(CostModelPyfunc())
