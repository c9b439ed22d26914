{#- Keys of the stage-1 signal tables: one row per message x signal in
    int_message_signals_extracted, one row per signal in signal_label_counts and stage1_candidates.
    Returns the duplicated keys. -#}

select 'int_message_signals_extracted' as model, message_id, signal_kind, signal_value, count(*) as row_count
from {{ ref('int_message_signals_extracted') }}
group by message_id, signal_kind, signal_value
having count(*) > 1

union all

select 'signal_label_counts' as model, null as message_id, signal_kind, signal_value, count(*) as row_count
from {{ ref('signal_label_counts') }}
group by signal_kind, signal_value
having count(*) > 1

union all

select 'stage1_candidates' as model, null as message_id, signal_kind, signal_value, count(*) as row_count
from {{ ref('stage1_candidates') }}
group by signal_kind, signal_value
having count(*) > 1
