# models.awk: what report.awk and chart.awk share, loaded before either:
#   awk -f bench/models.awk -f bench/report.awk machine.tsv results.tsv
#   awk -f bench/models.awk -f bench/chart.awk results.tsv
# Each keeps its models, in the order they first came, in models[1..nmodels].

# Models in the course's order, then any others in the order they came.
function order_models(    order, rank, i, j, t, k) {
    k = split("step1 step2 step3 step4 step5 step6 node poll", order, " ")
    for (i = 1; i <= k; i++) rank[order[i]] = i
    for (i = 1; i <= nmodels; i++) key_of[models[i]] = ((models[i] in rank) ? rank[models[i]] : k + i)
    for (i = 2; i <= nmodels; i++)
        for (j = i; j > 1 && key_of[models[j - 1]] > key_of[models[j]]; j--) { t = models[j]; models[j] = models[j - 1]; models[j - 1] = t }
}
