# lme4 reference values for crossed designs (data from make_crossed_data.py).
# Run from this folder: Rscript make_crossed.R  (R 4.2.2, lme4 1.1-31 from Debian's r-cran-lme4)
suppressMessages(library(lme4))
cc <- read.csv("crossed_correlated.csv", colClasses = c(subject = "character", item = "character"))
pl <- read.csv("plates.csv", colClasses = c(plate = "character", sample = "character"))
t3 <- read.csv("three_crossed.csv", colClasses = c(subject = "character", item = "character", rater = "character"))
specs <- list(
  crossed_correlated = list(f = y ~ x + (1 + x | subject) + (1 + x | item), d = cc),
  plates = list(f = diameter ~ 1 + (1 | plate) + (1 | sample), d = pl),
  three_crossed = list(f = y ~ x + (1 | subject) + (1 | item) + (1 | rater), d = t3)
)
fe <- list(); vc <- list(); re <- list(); ll <- list()
for (n in names(specs)) for (reml in c(TRUE, FALSE)) {
  m <- lmer(specs[[n]]$f, data = specs[[n]]$d, REML = reml)
  meth <- ifelse(reml, "REML", "ML")
  cf <- summary(m)$coefficients
  fe[[length(fe) + 1]] <- data.frame(model = n, method = meth, term = rownames(cf), estimate = cf[, 1],
                                     std_error = cf[, 2], row.names = NULL)
  v <- as.data.frame(VarCorr(m)); v$model <- n; v$method <- meth; vc[[length(vc) + 1]] <- v
  r <- as.data.frame(ranef(m, condVar = TRUE)); r$model <- n; r$method <- meth; re[[length(re) + 1]] <- r
  ll[[length(ll) + 1]] <- data.frame(model = n, method = meth, logLik = as.numeric(logLik(m)),
                                     AIC = AIC(m), BIC = BIC(m), nobs = nobs(m), singular = isSingular(m))
}
write.csv(do.call(rbind, fe), "crossed_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, vc), "crossed_variance_components.csv", row.names = FALSE)
write.csv(do.call(rbind, re), "crossed_random_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, ll), "crossed_fit_stats.csv", row.names = FALSE)
print(packageVersion("lme4"))
