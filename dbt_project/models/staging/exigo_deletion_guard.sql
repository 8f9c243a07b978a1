-- H9: the deletions each swept entity would get in this batch, checked before any history model
-- writes (see macro exigo_deletion_guard); one row per swept entity with the counts it saw.
{{ exigo_deletion_guard() }}
