"""The rating family: explicit ratings from IDs and reviews (models in ``fusionrec.models.rating``)."""

from fusionrec.tasks.rating.task import RatingTask, RatingTaskConfig

__all__ = ["RatingTask", "RatingTaskConfig"]
