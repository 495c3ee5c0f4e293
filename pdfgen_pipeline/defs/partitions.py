"""Each ouvrage of the referentiel is a dynamic partition."""

import dagster as dg

OUVRAGES = "ouvrages"

ouvrages_partitions = dg.DynamicPartitionsDefinition(name=OUVRAGES)
