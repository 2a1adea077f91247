"""Private by design: pseudonymised ids, differential privacy with an epsilon budget, and
erasure that removes a user's effect on the model (see docs/privacy.md).

Opacus is imported lazily (only DP-SGD training needs it).
"""

from lumenrec.privacy.dp import (
    ACCOUNTANTS,
    PrivacySpend,
    bounded_rows,
    check_budget,
    epsilon_spent,
    gaussian_noise_multiplier,
    gram_sensitivity,
    noise_multiplier_for,
)
from lumenrec.privacy.forget import forget_user
from lumenrec.privacy.ids import KEY_ENV, Pseudonymizer, pseudonymize_dataset
from lumenrec.privacy.ledger import LEDGER_FILE, PrivacyLedger
from lumenrec.privacy.private_models import (
    PRIVATE_VARIANTS,
    PrivateEASE,
    PrivateItemKNN,
    PrivateMF,
    PrivatePopularity,
    PrivateRatingMF,
    make_private_model,
)
from lumenrec.privacy.private_rating import PrivateRatingALS

__all__ = [
    "ACCOUNTANTS",
    "KEY_ENV",
    "LEDGER_FILE",
    "PRIVATE_VARIANTS",
    "PrivacyLedger",
    "PrivacySpend",
    "PrivateEASE",
    "PrivateItemKNN",
    "PrivateMF",
    "PrivatePopularity",
    "PrivateRatingALS",
    "PrivateRatingMF",
    "Pseudonymizer",
    "bounded_rows",
    "check_budget",
    "epsilon_spent",
    "forget_user",
    "gaussian_noise_multiplier",
    "gram_sensitivity",
    "make_private_model",
    "noise_multiplier_for",
    "pseudonymize_dataset",
]
