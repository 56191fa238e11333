"""The rules about subscribers, in one place: how an address is normalised, who an edition
goes to, what suppresses an address, what a bounce or a complaint does, and every change to a
subscription with the consent event it writes.

Low in the layers (above ``store`` and ``ingest.text``, below ``edition``): the build, the
send loop, the inbox loop and every face ask here, so no rule is written twice.
"""

from digest.audience.addresses import (
    EMAIL_MAX_LENGTH,
    address_domain,
    address_hash,
    bare_address,
    clean_name,
    comparable_address,
    is_placeholder,
    lookup_form,
    mailbox_key,
    normalise_email,
)
from digest.audience.consent import ConsentAction, record_consent
from digest.audience.eligibility import (
    ListAudience,
    eligible_choices,
    eligible_count,
    eligible_subscribers,
    list_audiences,
    skip_reason,
)
from digest.audience.forget import ForgetReport, forget
from digest.audience.subscriptions import (
    ConfirmState,
    SignUp,
    add_confirmed,
    complain,
    confirm,
    confirm_state,
    find_subscriber,
    record_signup,
    set_preferences,
    subscription_of,
    unsubscribe,
)
from digest.audience.suppression import (
    DEFAULT_SOFT_BOUNCE_LIMIT,
    hard_bounce,
    is_forgotten,
    is_suppressed,
    soft_bounce,
    suppress,
    unsuppress,
)

__all__ = [
    "DEFAULT_SOFT_BOUNCE_LIMIT",
    "EMAIL_MAX_LENGTH",
    "ConfirmState",
    "ConsentAction",
    "ForgetReport",
    "ListAudience",
    "SignUp",
    "add_confirmed",
    "address_domain",
    "address_hash",
    "bare_address",
    "clean_name",
    "comparable_address",
    "complain",
    "confirm",
    "confirm_state",
    "eligible_choices",
    "eligible_count",
    "eligible_subscribers",
    "find_subscriber",
    "forget",
    "hard_bounce",
    "is_forgotten",
    "is_placeholder",
    "is_suppressed",
    "list_audiences",
    "lookup_form",
    "mailbox_key",
    "normalise_email",
    "record_consent",
    "record_signup",
    "set_preferences",
    "skip_reason",
    "soft_bounce",
    "subscription_of",
    "suppress",
    "unsubscribe",
    "unsuppress",
]
