-- Every rule_evaluations row adds up: hits by label sum to hits, no count exceeds its window,
-- rates and bounds lie in 0..1 and the Wilson interval brackets the precision.
select *
from {{ ref('rule_evaluations') }}
where
    hit_count <> spam_hit_count + ham_hit_count + unlabelled_hit_count
    or hit_count > window_message_count
    or spam_hit_count > window_spam_count
    or ham_hit_count > window_ham_count
    or unique_spam_hit_count > spam_hit_count
    or precision not between 0 and 1
    or recall not between 0 and 1
    or coverage not between 0 and 1
    or false_positive_rate not between 0 and 1
    or f1_score not between 0 and 1
    or precision_lower_bound not between 0 and 1
    or precision_upper_bound not between 0 and 1
    or false_positive_rate_upper_bound not between 0 and 1
    or precision_lower_bound > coalesce(precision, 0) + 1e-12
    or precision_upper_bound < coalesce(precision, 1) - 1e-12
    or false_positive_rate_upper_bound < coalesce(false_positive_rate, 0) - 1e-12
