"""What an answer, or its absence, means for each row: the one place that decides. `replies`:
an answer to one call (a revoke, a customer lookup) or its failure; `readbacks`: a read-back of
a row whose answer was lost; `rows`: a row among the others (covering rows, races) and every
row as the run left it."""
