export declare function formatBytes(bytes: number): string;
