{#-
    The combination of the given columns is unique in the model; nulls count as one value
    (as group by treats them), so a null delivery_date group can appear only once.
    Returns one row per repeated combination.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

    with

    combinations as (
        select
            {% for column in combination_of_columns %}
                {{ column }},
            {% endfor %}
            count(*) as row_count
        from {{ model }}
        group by {{ combination_of_columns | join(', ') }}
    ),

    final as (
        select *
        from combinations
        where row_count > 1
    )

    select * from final

{% endtest %}
