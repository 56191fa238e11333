"""The operator's catalog: sections, feed sources, mailing lists and the people on them, each
change checked before it is stored. Split along its seams: ``validation`` (the checks every
input goes through), ``lists`` (sections and lists), ``sources`` and ``subscribers``. The names
below are the session-level operations the core, the tests and the benchmarks call."""

from digest.service.catalog.lists import (
    add_list,
    add_section,
    check_list_enabled,
    get_list,
    get_section,
    remove_list,
    set_list_enabled,
    set_list_public,
    set_list_review,
)
from digest.service.catalog.sources import (
    IDENTITIES,
    FeedCheck,
    add_source,
    check_feed,
    find_source,
    get_source,
    private_address,
    remove_source,
    set_source_enabled,
)
from digest.service.catalog.subscribers import (
    IMPORT_CHUNK_ROWS,
    ImportReport,
    csv_safe_cell,
    import_subscribers,
    list_subscribers,
    read_subscriber_csv,
    subscribe,
)
from digest.service.catalog.validation import (
    MAX_PER_SECTION,
    check_email,
    check_language,
    check_location,
    check_slug,
    check_subject_template,
    check_template_dir,
    check_text,
    urlsplit_or_none,
)

__all__ = [
    "IDENTITIES",
    "IMPORT_CHUNK_ROWS",
    "MAX_PER_SECTION",
    "FeedCheck",
    "ImportReport",
    "add_list",
    "add_section",
    "add_source",
    "check_email",
    "check_feed",
    "check_language",
    "check_list_enabled",
    "check_location",
    "check_slug",
    "check_subject_template",
    "check_template_dir",
    "check_text",
    "csv_safe_cell",
    "find_source",
    "get_list",
    "get_section",
    "get_source",
    "import_subscribers",
    "list_subscribers",
    "private_address",
    "read_subscriber_csv",
    "remove_list",
    "remove_source",
    "set_list_enabled",
    "set_list_public",
    "set_list_review",
    "set_source_enabled",
    "subscribe",
    "urlsplit_or_none",
]
