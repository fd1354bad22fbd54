# lme4 reference values for poly() and I() terms on the bundled radon data, with predictions for new homes.
# Run from this folder: Rscript make_transforms.R  (R 4.2.2, lme4 1.1-31 from Debian's r-cran-lme4)
suppressMessages(library(lme4))
d <- read.csv("../../../data/radon_mn.csv", colClasses = c(county = "character"))
specs <- list(
  poly_uranium = log_radon ~ poly(log_uranium, 2) + floor + (1 | county),
  poly_interaction = log_radon ~ poly(log_uranium, 3) * floor + (1 | county),
  arithmetic = log_radon ~ floor + log_uranium + I(log_uranium^2) + I(floor * log_uranium) +
    I(exp(log_uranium) / (1 + floor)) + (1 | county)
)
new <- data.frame(floor = c(0, 1, 1, 0, 1), log_uranium = c(0.2, -0.5, 0.1, 0.4, -0.9),
                  county = c("HENNEPIN", "NO SUCH COUNTY", "AITKIN", "CASS", "LAKE"))
fe <- list(); ll <- list(); pr <- list()
for (n in names(specs)) {
  m <- lmer(specs[[n]], data = d, REML = TRUE)
  cf <- summary(m)$coefficients
  fe[[n]] <- data.frame(model = n, term = rownames(cf), estimate = cf[, 1], std_error = cf[, 2], row.names = NULL)
  ll[[n]] <- data.frame(model = n, logLik = as.numeric(logLik(m)), sd_county = attr(VarCorr(m)$county, "stddev"),
                        sigma = sigma(m))
  pr[[n]] <- data.frame(model = n, row = seq_len(nrow(new)),
                        with_groups = predict(m, newdata = new, allow.new.levels = TRUE),
                        population = predict(m, newdata = new, re.form = NA))
}
write.csv(do.call(rbind, fe), "transforms_fixed_effects.csv", row.names = FALSE)
write.csv(do.call(rbind, ll), "transforms_fit_stats.csv", row.names = FALSE)
write.csv(do.call(rbind, pr), "transforms_predictions.csv", row.names = FALSE)
print(packageVersion("lme4"))
