# lme4 reference values for nested and crossed random effects (data from make_structures_data.py).
# Run from this folder: Rscript make_structures.R  (R 4.2.2, lme4 1.1-31 from Debian's r-cran-lme4)
suppressMessages(library(lme4))
nested <- read.csv("nested.csv", colClasses=c(school="character", class="character"))
crossed <- read.csv("crossed.csv", colClasses=c(subject="character", item="character"))
specs <- list(
  nested_intercepts = list(log = y ~ x + (1 | school/class), d = nested),
  nested_slopes = list(log = y ~ x + (1 + x | school) + (1 | class:school), d = nested),
  crossed_intercepts = list(log = y ~ x + (1 | subject) + (1 | item), d = crossed),
  crossed_slopes = list(log = y ~ x + (1 + x || subject) + (1 | item), d = crossed)
)
fe <- list(); vc <- list(); re <- list(); ll <- list()
for (n in names(specs)) for (reml in c(TRUE, FALSE)) {
  m <- lmer(specs[[n]]$log, data = specs[[n]]$d, REML = reml)
  meth <- ifelse(reml, "REML", "ML")
  cf <- summary(m)$coefficients
  fe[[length(fe) + 1]] <- data.frame(model = n, method = meth, term = rownames(cf), estimate = cf[, 1],
                                     std_error = cf[, 2], row.names = NULL)
  v <- as.data.frame(VarCorr(m)); v$model <- n; v$method <- meth; vc[[length(vc) + 1]] <- v
  r <- as.data.frame(ranef(m, condVar = TRUE)); r$model <- n; r$method <- meth; re[[length(re) + 1]] <- r
  ll[[length(ll) + 1]] <- data.frame(model = n, method = meth, logLik = as.numeric(logLik(m)),
                                     AIC = AIC(m), BIC = BIC(m), nobs = nobs(m), singular = isSingular(m))
}
write.csv(do.call(rbind, fe), "structures_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, vc), "structures_variance_components.csv", row.names = FALSE)
write.csv(do.call(rbind, re), "structures_random_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, ll), "structures_fit_stats.csv", row.names = FALSE)
print(packageVersion("lme4"))
