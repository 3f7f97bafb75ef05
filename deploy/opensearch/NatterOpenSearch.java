// Runs one OpenSearch node in this JVM for Natter's tests (start.sh): the
// node of a distribution, minus its launcher. The launcher (Bootstrap)
// refuses root and installs a security manager whose policy names the
// distribution's jar layout; a test node on loopback needs neither. The
// HTTP transport is the transport-netty4 module, loaded from the classpath
// as a plugin.
//
// System properties: natter.home (data, logs, config), natter.http.port,
// natter.transport.port.
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;

import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

public final class NatterOpenSearch {
    private static final class TestNode extends Node {
        TestNode(Environment env) {
            super(env, List.of(Netty4Plugin.class), true);
        }
    }

    public static void main(String[] args) throws Exception {
        Path home = Paths.get(System.getProperty("natter.home"));
        Files.createDirectories(home.resolve("config"));
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "natter-test")
            .put("node.name", "natter-test")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", System.getProperty("natter.http.port", "9200"))
            .put("transport.port", System.getProperty("natter.transport.port", "9300"))
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // A test box's disk may be fuller than production watermarks allow.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), home.resolve("config"), () -> "natter-test");
        Node node = new TestNode(env);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }));
        node.start();
        System.out.println("natter-opensearch: started");
        Thread.currentThread().join();
    }
}
