package org.mgedb.neo4j;

import java.util.Optional;

import org.neo4j.configuration.Config;
import org.neo4j.gds.LicensingBusinessFacade;
import org.neo4j.gds.OpenGdsLicenseState;
import org.neo4j.gds.SysInfoProcFacade;
import org.neo4j.gds.applications.operations.FeatureTogglesRepository;
import org.neo4j.gds.core.model.OpenModelCatalog;
import org.neo4j.gds.core.write.NativeExportBuildersProvider;
import org.neo4j.gds.metrics.Metrics;
import org.neo4j.gds.procedures.integration.DefaultExportLocation;
import org.neo4j.gds.procedures.integration.LogAccessor;
import org.neo4j.gds.procedures.integration.OpenGraphDataScienceExtensionBuilder;
import org.neo4j.kernel.api.procedure.GlobalProcedures;
import org.neo4j.kernel.extension.ExtensionFactory;
import org.neo4j.kernel.extension.context.ExtensionContext;
import org.neo4j.kernel.lifecycle.Lifecycle;
import org.neo4j.logging.internal.LogService;

/**
 * Registers the component every Graph Data Science procedure injects.
 *
 * <p>Maven Central carries the GDS modules (procedures, algorithms, the extension builder) but not
 * the packaging module of the plugin jar, whose only code is the kernel extension that calls
 * {@link OpenGraphDataScienceExtensionBuilder} with the open edition's choices. This is that
 * extension, for the pinned GDS version in pom.xml: native writes, the open in-memory model
 * catalog, no metrics, models never stored on disk. It also registers the open edition's licence
 * state for the procedures of proc-sysinfo ({@code gds.version()}, {@code gds.debug.sysInfo()}).
 */
public final class OpenGdsExtension extends ExtensionFactory<OpenGdsExtension.Dependencies> {
    public OpenGdsExtension() {
        super("gds.open");
    }

    @Override
    public Lifecycle newInstance(ExtensionContext context, Dependencies deps) {
        var log = new LogAccessor().getLog(deps.logService(), getClass());
        var sysInfo = new SysInfoProcFacade(
            new LicensingBusinessFacade(() -> OpenGdsLicenseState.INSTANCE));
        deps.globalProcedures().registerComponent(SysInfoProcFacade.class, ctx -> sysInfo, true);
        var built = OpenGraphDataScienceExtensionBuilder.create(
            log,
            deps.globalProcedures(),
            deps.config(),
            (db, config) -> new NativeExportBuildersProvider(),
            new DefaultExportLocation(log, deps.config()),
            new FeatureTogglesRepository(),
            Metrics.DISABLED,
            new OpenModelCatalog(),
            model -> {
                throw new UnsupportedOperationException("storing models needs GDS Enterprise");
            },
            Optional.empty(),
            Optional.empty(),
            Optional.empty());
        return built.getLeft().build();
    }

    /** What Neo4j hands the extension. */
    public interface Dependencies {
        Config config();

        GlobalProcedures globalProcedures();

        LogService logService();
    }
}
